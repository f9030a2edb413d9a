"""Server configuration: the pipeline's options plus the serving ones, filled from CLI flags with
MARIONETTE_<FLAG> environment fallbacks (both derived from the fields, see options.cli)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.config import Device, RunSettings
from models.pipeline import PipelineConfig
from options import OptionError, OptionParser, new_parser, option, redefault
from rtc.ice_scope import IceScope, interface_addresses
from server.origin_guard import normalised_origin, served_host_pattern

ENV_PREFIX = "MARIONETTE_"


@dataclass(frozen=True, kw_only=True)
class ServerConfig(PipelineConfig):
    host: str = option("127.0.0.1", "address to listen on")
    port: int = option(8080, "TCP port for HTTP (signaling, demo page, metrics)", low=0, high=65535)
    # Against DNS rebinding: a foreign page under its own name must not reach a server on localhost or the LAN.
    public_host: tuple[str, ...] = option((), "comma-separated host names (or host:port) callers open this server "
                                          "under, e.g. avatar.example.com; requests naming another Host get 403 "
                                          "(/healthz and /metrics excepted). Default: localhost names and IP "
                                          "addresses only")
    allowed_origins: tuple[str, ...] = option((), "comma-separated origins (https://app.example.com) of other "
                                              "sites' pages allowed to POST/DELETE here; a page's own origin "
                                              "always is")
    # Browsers give a page the camera only in a secure context: https, or http on localhost.
    tls_cert: Path | None = option(None, "PEM certificate (chain) to serve https with, e.g. from python -m "
                                   "server.selfsigned; needs --tls-key", existing=True)
    tls_key: Path | None = option(None, "PEM private key of --tls-cert", existing=True)
    trust_forwarded_for: bool = option(False, "behind a reverse proxy on this host (e.g. docker-compose.yml's): "
                                       "per-client limits take the caller's address from the X-Forwarded-For "
                                       "entry the proxy adds (only on requests from loopback)")
    device: Device = redefault(RunSettings, "device", "auto")
    max_sessions: int = option(8, "concurrent sessions, a hard cap whatever the measured budget says; more get "
                               "HTTP 503", low=0)
    admission: Literal["measured", "cap"] = option(
        "measured", "measured: admit a session only while the measured model and CPU time per frame leave room "
        "for --target-fps more frames a second (the first session of an idle server is always admitted); "
        "cap: only --max-sessions limits")
    target_fps: float = option(30.0, "frame rate admission reserves for every session", low=1, high=120)
    admission_headroom: float = option(0.85, "share of the model thread and of the CPU cores admission may plan "
                                       "to use", low=0.1, high=1.0)
    negotiation_timeout_s: float = option(10.0, "answer 504 when the WebRTC negotiation of an offer takes longer",
                                          low=0.1)
    stuck_after_s: float = option(10.0, "/healthz answers 503 when a model batch runs or frames wait this long",
                                  low=0.1)
    max_json_bytes: int = option(64 * 1024, "largest JSON request body (an SDP offer is a few KB)", low=1024)
    max_batch: int = option(16, "largest cross-session batch per model call", low=1)
    max_wait_ms: float = option(4.0, "wait at most this long for more frames to fill a batch", low=0)
    video_idle_timeout_s: float = option(5.0, "close a session whose camera sent no video for this long (counted "
                                         "from set-up until the first frame); pings do not keep it open", low=1)
    max_session_s: float = option(4 * 3600.0, "longest a call may last; the session is then closed (TURN "
                                  "credentials handed to a call live just past it)", low=60)
    max_sessions_per_client: int = option(2, "sessions (calls and room joins) one client address may have open "
                                          "at once; more get HTTP 429", low=1)
    max_offers_per_minute: int = option(12, "offers and room joins one client address may start in any 60 s; "
                                        "more get HTTP 429", low=1)
    max_upload_bytes: int = option(8 * 1024 * 1024, "largest accepted photo upload", low=1)
    max_upload_photos: int = option(8, "most photos in one upload (few-shot targets)", low=1)
    max_uploads_per_client: int = option(1, "uploads one client address may have in progress at once (each "
                                         "takes the one target-preparation thread)", low=1)
    decode_threads: int = option(2, "threads that decode uploaded photos (each may hold ~100 MB while it runs)",
                                 low=1, high=16)
    decode_queue: int = option(4, "photo decodes that may wait for a decode thread; more get HTTP 503", low=0)
    max_uploaded_targets: int = option(64, "uploaded targets kept in memory (oldest evicted first)", low=1)
    room_size: int = option(4, "most participants in one avatar room", low=2, high=16)
    max_rooms: int = option(32, "most avatar rooms open at once", low=0)
    room_unjoined_ttl_s: float = option(600.0, "a room nobody has joined closes after this long", low=10)
    max_unjoined_rooms_per_client: int = option(2, "rooms one client address may have open that nobody has joined "
                                                "yet; more get HTTP 429", low=1)
    sfu: Literal["none", "janus"] = option(
        "none", "where avatar rooms forward media: none: this process relays every avatar to every viewer (one "
        "server per room); janus: avatars are published once into a Janus VideoRoom and callers subscribe there "
        "(rooms span servers pointed at one Janus)")
    # Private: an internal address, and the two secrets of the rooms (set them by environment, never on a
    # command line that `ps` shows).
    sfu_url: str = option("ws://127.0.0.1:8188", "Janus WebSocket API URL (--sfu janus); keep it internal",
                          private=True)
    sfu_secret: str = option("", "Janus's API secret (api_secret in Janus's config), the same on every server "
                             "sharing the Janus; set it by environment, MARIONETTE_SFU_SECRET", private=True)
    room_key_secret: str = option("", "the key room numbers, pins and room secrets derive from (--sfu janus), the "
                                  "same on every server sharing the Janus and unlike --sfu-secret; set it by "
                                  "environment, MARIONETTE_ROOM_KEY_SECRET", private=True)
    sfu_recover_s: float = option(30.0, "when Janus restarts mid-room, re-publish the room's avatars if it is back "
                                  "within this long; past it the rooms end with a message", low=0)
    # Private: TURN credentials may be inline, so /api/info never shows them.
    ice_servers: tuple[str, ...] = option((), "comma-separated STUN/TURN URLs for the server's side, TURN "
                                          "credentials inline: turn:user:pass@host:3478 (callers get the STUN "
                                          "ones; for TURN prefer --turn-urls); none: host candidates only",
                                          private=True)
    turn_urls: tuple[str, ...] = option((), "comma-separated TURN URLs (turn:host:3478, turn:host:3478?transport=tcp, "
                                        "turns:host:5349) handed to callers and used by the server itself, with "
                                        "time-limited credentials from --turn-secret", aliases=("--turn-url",))
    # Private: the secret shared with coturn (static-auth-secret); whoever holds it can mint credentials.
    turn_secret: str | None = option(None, "shared secret of the TURN server (coturn: use-auth-secret, "
                                     "static-auth-secret); set it by environment, MARIONETTE_TURN_SECRET",
                                     private=True)
    ice_servers_per_minute: int = option(30, "GET /api/ice-servers answers (each with fresh TURN credentials, "
                                         "valid --max-session-s plus 10 min) per client address a minute; more get "
                                         "HTTP 429 (a call asks once, plus once per watched feed in a Janus room)",
                                         low=1)
    # Where the server's ICE may send: unlimited, any offer's candidates would direct its checks anywhere.
    ice_host_addresses: tuple[str, ...] = option((), "comma-separated local addresses the server's ICE gathers "
                                                 "on (default: every interface address but loopback); "
                                                 "127.0.0.1 keeps the media of local tests and load tests on "
                                                 "loopback")
    ice_allowed_peers: tuple[str, ...] = option((), "comma-separated networks (CIDR) remote ICE candidates must "
                                                "be in, e.g. 203.0.113.10/32 for a TURN relay's address (default: "
                                                "any, loopback only when --ice-host-addresses has one); always "
                                                "refused: ports below 1024, unspecified, multicast, link-local "
                                                "(169.254.169.254) and reserved addresses")
    log_level: Literal["debug", "info", "warning", "error"] = option("info", "logging level")

    def rules(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise OptionError("tls_cert" if self.tls_cert is None else "tls_key",
                              "--tls-cert and --tls-key go together: give both, or neither for plain http")
        for url in self.turn_urls:
            if not url.startswith(("turn:", "turns:")) or "@" in url:
                raise OptionError("turn_urls", f"{url[:80]!r}: expected turn:host:port or turns:host:port (no inline "
                                  "credentials: they come from --turn-secret)")
        if self.turn_urls and not self.turn_secret:
            raise OptionError("turn_urls", "TURN needs --turn-secret (MARIONETTE_TURN_SECRET), the TURN server's "
                              "static-auth-secret")
        for name in self.public_host:
            if not served_host_pattern(name):
                raise OptionError("public_host", f"{name[:80]!r}: expected a host name or address, optionally "
                                  "with :port (avatar.example.com, 192.0.2.7:8080, [2001:db8::1]:443)")
        for origin in self.allowed_origins:
            if normalised_origin(origin) is None:
                raise OptionError("allowed_origins", f"{origin[:80]!r}: expected scheme://host[:port], e.g. "
                                  "https://app.example.com (no path)")
        try:
            IceScope.of(host_addresses=self.ice_host_addresses)
        except ValueError as error:
            raise OptionError("ice_host_addresses", str(error)) from None
        try:
            IceScope.of(allowed_peers=self.ice_allowed_peers)
        except ValueError as error:
            raise OptionError("ice_allowed_peers", str(error)) from None
        missing = sorted(set(self.ice_host_addresses) - interface_addresses())
        if missing:
            raise OptionError("ice_host_addresses", f"no interface of this machine has the address {missing[0]!r}")
        if self.sfu == "janus":
            self._janus_rules()

    def _janus_rules(self) -> None:
        if not self.sfu_url.startswith(("ws://", "wss://")):
            raise OptionError("sfu_url", f"{self.sfu_url[:80]!r}: must be Janus's WebSocket API URL, e.g. "
                              "ws://127.0.0.1:8188 (its HTTP transport would carry the API secret in a URL)")
        for name in ("sfu_secret", "room_key_secret"):
            problem = weak_secret_problem(getattr(self, name))
            if problem:
                variable = ENV_PREFIX + name.upper()
                raise OptionError(name, f"{problem}; make one with: export {variable}=$(openssl rand -hex 32)")
        if self.sfu_secret == self.room_key_secret:
            raise OptionError("room_key_secret", "must differ from --sfu-secret: whoever holds Janus's API secret "
                              "must not also be able to compute every room's pin")


# Well-known sample values (Janus's own samples ship janusrocks / janusoverlord) and the words people put in.
PLACEHOLDER_WORDS = ("changeme", "change", "replaceme", "placeholder", "janusrocks", "janusoverlord", "password",
                     "secret", "example", "default", "dummy")
MIN_SECRET_CHARS = 16


def weak_secret_problem(value: str) -> str | None:
    """Why a shared secret is not fit to guard a service (None: fine): empty, short, or a known placeholder."""
    if not value:
        return "is not set"
    if len(value) < MIN_SECRET_CHARS:
        return f"is {len(value)} characters long: use at least {MIN_SECRET_CHARS} random ones"
    normalized = "".join(ch for ch in value.lower() if ch.isalnum())
    word = next((w for w in PLACEHOLDER_WORDS if w in normalized), None)
    if word is not None:
        return f"looks like a placeholder (it contains {word!r}): use a random value"
    if len(set(value)) < 6:
        return "repeats too few characters: use a random value"
    return None


def build_parser() -> OptionParser:
    parser = new_parser(
        "python -m server",
        "MarioNETte Live: real-time face reenactment over WebRTC. Every flag can also be set by an environment "
        f"variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}MAX_SESSIONS=4).")
    return OptionParser(parser, ServerConfig, ENV_PREFIX)


def parse_config(argv: list[str] | None = None) -> ServerConfig:
    return build_parser().parse(argv)

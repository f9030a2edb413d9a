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

ENV_PREFIX = "MARIONETTE_"


@dataclass(frozen=True, kw_only=True)
class ServerConfig(PipelineConfig):
    host: str = option("127.0.0.1", "address to listen on")
    port: int = option(8080, "TCP port for HTTP (signaling, demo page, metrics)", low=0, high=65535)
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
    session_idle_timeout_s: float = option(10.0, "close a session that sent no video and no ping for this long",
                                           low=0)
    max_session_s: float = option(4 * 3600.0, "longest a call may last; the session is then closed (TURN "
                                  "credentials handed to a call live just past it)", low=60)
    max_upload_bytes: int = option(8 * 1024 * 1024, "largest accepted photo upload", low=1)
    max_upload_photos: int = option(8, "most photos in one upload (few-shot targets)", low=1)
    max_uploads_per_client: int = option(1, "uploads one client address may have in progress at once (each "
                                         "takes the one target-preparation thread)", low=1)
    max_uploaded_targets: int = option(64, "uploaded targets kept in memory (oldest evicted first)", low=1)
    room_size: int = option(4, "most participants in one avatar room", low=2, high=16)
    max_rooms: int = option(32, "most avatar rooms open at once", low=0)
    sfu: Literal["none", "janus"] = option(
        "none", "where avatar rooms forward media: none: this process relays every avatar to every viewer (one "
        "server per room); janus: avatars are published once into a Janus VideoRoom and callers subscribe there "
        "(rooms span servers pointed at one Janus)")
    # Private: an internal address, and the secret that guards Janus's API and every room's pin.
    sfu_url: str = option("http://127.0.0.1:8088/janus", "Janus HTTP API URL (--sfu janus); keep it internal",
                          private=True)
    sfu_secret: str = option("", "Janus's API secret (janus --apisecret) and the key room pins derive from: "
                             "the same on every server sharing the Janus", private=True)
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
        if self.sfu == "janus" and not self.sfu_url.startswith(("http://", "https://")):
            raise OptionError("sfu_url", f"{self.sfu_url[:80]!r}: must be Janus's HTTP API URL, "
                                         "e.g. http://127.0.0.1:8088/janus")


def build_parser() -> OptionParser:
    parser = new_parser(
        "python -m server",
        "MarioNETte Live: real-time face reenactment over WebRTC. Every flag can also be set by an environment "
        f"variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}MAX_SESSIONS=4).")
    return OptionParser(parser, ServerConfig, ENV_PREFIX)


def parse_config(argv: list[str] | None = None) -> ServerConfig:
    return build_parser().parse(argv)

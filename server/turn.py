"""ICE servers for both ends of a call, with time-limited TURN credentials (the "TURN REST API" scheme that
coturn's `use-auth-secret` / `static-auth-secret` checks).

The server and coturn share one secret; nobody else ever sees it. Each credential is
username = "<expiry unix time>:<tag>", password = base64(HMAC-SHA1(secret, username)); coturn recomputes the
HMAC and refuses the username once its expiry has passed. So a password leaked from one page stops working by
itself, and no static password sits in the page's config.js.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiortc import RTCIceServer

from server.config import ServerConfig
from server.sdp import ice_server


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str


def turn_credential(secret: str, ttl_s: float, tag: str | None = None, now: float | None = None) -> TurnCredential:
    """A username valid for `ttl_s` seconds from `now` and its password. `tag` names the holder (any text without
    a colon); a random one by default, so two callers never share a username."""
    expiry = int((time.time() if now is None else now) + ttl_s)
    username = f"{expiry}:{tag or secrets.token_hex(6)}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode())


# A credential outlives the longest call by this much: it is fetched before the offer, and coturn checks it
# again at every allocation refresh, so an expired one would cut the relay of a call still within its limit.
TURN_TTL_MARGIN_S = 600.0


@dataclass(frozen=True)
class IceSettings:
    """What a deployment says about ICE: `static` from --ice-servers (STUN, or TURN with inline credentials),
    `turn_urls` from --turn-urls, whose credentials are minted from `turn_secret` for `turn_ttl_s`: the longest
    call (--max-session-s) plus a margin, so a leaked credential dies soon after any call it could belong to."""

    static: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl_s: float = ServerConfig.max_session_s + TURN_TTL_MARGIN_S

    @classmethod
    def of(cls, config: ServerConfig) -> IceSettings:
        return cls(config.ice_servers, config.turn_urls, config.turn_secret, config.max_session_s + TURN_TTL_MARGIN_S)

    def for_browser(self, tag: str | None = None) -> list[dict[str, Any]]:
        """RTCPeerConnection's `iceServers` for a caller: the STUN servers and fresh TURN credentials.
        TURN entries with inline (static) credentials stay on the server: a page would show them to anyone."""
        servers: list[dict[str, Any]] = [{"urls": url} for url in self.static if url.startswith(("stun:", "stuns:"))]
        if self.turn_urls and self.turn_secret:
            cred = turn_credential(self.turn_secret, self.turn_ttl_s, tag)
            servers.append({"urls": list(self.turn_urls), "username": cred.username, "credential": cred.credential})
        return servers

    def for_server(self) -> list[RTCIceServer]:
        """aiortc's ICE servers for one session: the same TURN as the callers (aiortc uses the first STUN and the
        first TURN server it is given), with credentials of its own."""
        servers = [ice_server(url) for url in self.static]
        if self.turn_urls and self.turn_secret:
            cred = turn_credential(self.turn_secret, self.turn_ttl_s, "marionette-server")
            servers.append(RTCIceServer(urls=list(self.turn_urls), username=cred.username,
                                        credential=cred.credential))
        return servers

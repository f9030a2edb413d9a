"""Cross-site guard: which Host names the server answers to, and which pages may change its state.

A page on another site can make a browser send requests here: simple POSTs (text/plain, forms) need no CORS
preflight, and with DNS rebinding (the attacker's name re-pointed at 127.0.0.1 or a LAN address) the browser
even treats this server as the attacker's own origin and lets the page read the answers. Two checks stop it:

- Host: a rebinding page can only ever name the attacker's host, so the Host header must be one of ours:
  localhost names and loopback addresses always; any IP address by default (a browser sends an IP as Host
  only when it connected to that IP, so an attacker's DNS name never gets through); with --public-host,
  the names listed there instead. Probe paths (health, metrics) are exempt: Kubernetes probes and Prometheus
  name the pod by IP or whatever they like, and those paths change nothing.
- Origin, on every state-changing request (the checks of Go's net/http CrossOriginProtection):
  an --allowed-origins origin passes; otherwise the browser's own Sec-Fetch-Site must say same-origin (or
  none: typed by the user); without it, an Origin must name the same host as the Host header (the scheme is
  not compared: behind a TLS-terminating proxy the server sees http for an https page); a request with
  neither header is not from a browser (curl, the load tester) and passes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from server.errors import ApiError
from server.http_input import quoted

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def split_host(value: str) -> tuple[str, int | None] | None:
    """(host, port) of a Host header or a --public-host entry: the host lower-cased (an IP address in its
    canonical form, without brackets), the port None when not given; None when malformed."""
    value = value.strip().lower()
    port_text = ""
    if value.startswith("["):  # [IPv6] or [IPv6]:port
        host, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else ""
        if not _is_ip(host) or ":" not in host:
            return None
    elif value.count(":") > 1:  # a bare IPv6 address (only in --public-host; a Host header brackets it)
        host = value
    else:
        host, colon, port_text = value.partition(":")
        if colon and not port_text:
            return None
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            return None
        port = int(port_text)
    if _is_ip(host):
        return str(ipaddress.ip_address(host)), port
    host = host.removesuffix(".")  # "localhost." is "localhost"
    return (host, port) if len(host) <= 253 and _NAME.match(host) else None


def served_host_pattern(value: str) -> bool:
    """Whether a --public-host entry is a host name or address, with an optional port."""
    return split_host(value) is not None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    """localhost and its subdomains (RFC 6761: browsers resolve them to loopback themselves), 127/8 and ::1."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


@dataclass(frozen=True)
class ServedHosts:
    names: frozenset[tuple[str, int | None]]  # (host, port) pairs; port None: any port
    any_address: bool  # every IP address is ours too (no --public-host given)

    @classmethod
    def of(cls, public_host: Iterable[str], listen_host: str) -> ServedHosts:
        listed = [parsed for name in public_host if (parsed := split_host(name)) is not None]
        if listed:
            return cls(frozenset(listed), any_address=False)
        own = split_host(listen_host) if listen_host else None  # --host given as a name: that name
        return cls(frozenset([own] if own is not None else []), any_address=True)

    def serves(self, host_header: str) -> bool:
        parsed = split_host(host_header)
        if parsed is None:
            return False
        host, port = parsed
        if _is_loopback(host) or (self.any_address and _is_ip(host)):
            return True
        return (host, None) in self.names or (host, port) in self.names


def normalised_origin(value: str) -> str | None:
    """scheme://host[:port] lower-cased with the scheme's default port dropped; None unless an http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or parts.path not in ("", "/") or parts.query or parts.fragment \
            or parts.username is not None or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if split_host(f"[{host}]" if ":" in host else host) is None:
        return None
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        shown += f":{port}"
    return f"{parts.scheme}://{shown}"


def _same_host(origin: str, host_header: str) -> bool:
    """Whether the Origin names the host and port the request was sent to (its Host header; a missing port is
    the origin scheme's default on both sides)."""
    normalised, target = normalised_origin(origin), split_host(host_header)
    if normalised is None or target is None:
        return False
    scheme, _, netloc = normalised.partition("://")
    own = split_host(netloc)
    default = DEFAULT_PORTS[scheme]
    return own is not None and (own[0], own[1] or default) == (target[0], target[1] or default)


def check_host(request: web.Request, hosts: ServedHosts) -> None:
    host = request.headers.get("Host")
    if host is None or hosts.serves(host):
        return  # HTTP/1.0 without Host: no browser sends that
    if hosts.any_address:
        how = ("localhost and IP addresses; to serve it under this name, start it with --public-host <name> "
               "(MARIONETTE_PUBLIC_HOST)")
    else:
        how = "localhost and the names in --public-host (MARIONETTE_PUBLIC_HOST): add this one there to serve it"
    raise ApiError(403, f"unknown host {quoted(host)}: this server answers only to {how}")


def check_origin(request: web.Request, allowed: frozenset[str]) -> None:
    origin = request.headers.get("Origin")
    if origin is not None and normalised_origin(origin) in allowed:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:  # the browser's own verdict, which no page can set
        if fetch_site.lower() in ("same-origin", "none"):
            return
    elif origin is None or _same_host(origin, request.headers.get("Host", "")):
        return  # neither header: not sent by a browser page (curl, the load tester)
    named = "no Origin given" if origin is None else f"origin {quoted(origin)}"
    raise ApiError(403, f"cross-origin request refused: a page on another site ({named}) may not change this "
                   "server's state; allow its origin with --allowed-origins (MARIONETTE_ALLOWED_ORIGINS)")


def origin_guard(hosts: ServedHosts, allowed_origins: Iterable[str],
                 host_exempt_paths: Iterable[str] = ()) -> Callable[[web.Request, Handler], Awaitable]:
    """The aiohttp middleware: the Host check on every request (but `host_exempt_paths`), the Origin check on
    every state-changing one. Refusals are ApiError 403s (the JSON error middleware around it answers them)."""
    allowed = frozenset(o for o in map(normalised_origin, allowed_origins) if o is not None)
    exempt = frozenset(host_exempt_paths)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in exempt:
            check_host(request, hosts)
        if request.method not in SAFE_METHODS:
            check_origin(request, allowed)
        return await handler(request)

    return guard

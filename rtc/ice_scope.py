"""Where ICE may send: the host addresses aioice gathers on, and the remote addresses it will check.

aioice gathers on every interface address except exactly 127.0.0.1 (`get_host_addresses`) and pairs with any
address a peer names: in its SDP, trickled, resolved from an mDNS name, or the source of a binding request (a
peer-reflexive candidate). So an offer listing `10.0.0.5 53 typ host` makes the server send ICE checks to an
internal host, and a test call on a machine with an ordinary network interface sends its media to that
interface's address rather than to loopback.

aiortc creates aioice's Connection itself and aioice has no per-connection setting for either choice, so the
scope is process-wide: `install_ice_scope()` once at start-up, before any peer connection gathers (as
rtc.tuning installs the jitter buffer). Every connection of the process then obeys it: a server's callers and
its connections to Janus, or a load tester's callers. The hook replaces `aioice.ice.get_host_addresses` and
wraps three Connection methods: `add_remote_candidate` (SDP and trickled candidates, mDNS names),
`_add_remote_candidate` (every address, also a resolved mDNS name) and `request_received` (a binding request
from an address outside the scope is dropped unanswered, so no peer-reflexive candidate, check or response
ever goes there). `filter_sdp_candidates` applies the same rule to SDP we hand to another ICE agent (Janus).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import aioice.ice
import ifaddr
from aioice import mdns
from aioice.candidate import Candidate

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Below 1024 live system services (DNS 53, NTP 123, SNMP 161...); no browser, TURN relay or media server
# offers ICE there.
LOWEST_PEER_PORT = 1024
# A caller has a handful of candidates (one per interface and family, a relay or two); more only multiply checks.
MAX_REMOTE_CANDIDATES = 32
LOOPBACK_NETWORK = ipaddress.ip_network("127.0.0.0/8")


@dataclass(frozen=True)
class IceScope:
    """`host_addresses`: the only local addresses gathered on (None: aioice's choice, every interface but
    loopback). `allowed_peers`: the only networks remote candidates may be in (None: any address, but loopback
    only when this process gathers on loopback itself). Whatever the lists say, ports below 1024 and
    unspecified, multicast, broadcast, link-local (169.254.0.0/16: cloud metadata at 169.254.169.254) and
    reserved addresses are refused: no peer offers ICE there."""

    host_addresses: tuple[str, ...] | None = None
    allowed_peers: tuple[IPNetwork, ...] | None = None

    @classmethod
    def of(cls, host_addresses: Sequence[str] = (), allowed_peers: Sequence[str] = ()) -> IceScope:
        """From option text (empty: the default); raises ValueError naming a bad entry."""
        for address in host_addresses:
            if _address(address) is None:
                raise ValueError(f"{address[:60]!r} is not an IP address")
        networks = []
        for text in allowed_peers:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{text[:60]!r} is not a network (CIDR such as 10.0.0.0/8, or one address)") from None
        return cls(tuple(a.strip() for a in host_addresses) or None, tuple(networks) or None)

    def gathers_on_loopback(self) -> bool:
        return self.host_addresses is not None and any(_address(a).is_loopback for a in self.host_addresses)

    def refusal(self, host: str, port: int) -> str | None:
        """Why ICE may not send to host:port, or None when it may."""
        address = _address(host)
        if address is None:
            return "not an IP address"
        if port < LOWEST_PEER_PORT:
            return f"port below {LOWEST_PEER_PORT}"
        reserved = address.is_reserved and not address.is_loopback  # ::1 lies in the reserved ::/8
        if address.is_unspecified or address.is_multicast or address.is_link_local or reserved \
                or address == ipaddress.IPv4Address("255.255.255.255"):
            return "unspecified, multicast, broadcast, link-local or reserved address"
        if self.allowed_peers is not None:
            if not any(address.version == net.version and address in net for net in self.allowed_peers):
                return "outside the allowed peer networks"
        elif address.is_loopback and not self.gathers_on_loopback():
            return "loopback, and this process does not gather on loopback"
        return None

    def resolves_mdns(self) -> bool:
        """Resolving an mDNS name sends a multicast query to the LAN: pointless when only loopback is allowed."""
        return self.allowed_peers is None or any(not net.is_loopback for net in self.allowed_peers)


LOOPBACK = IceScope(("127.0.0.1",), (LOOPBACK_NETWORK,))  # tests and local load tools: media on 127.0.0.0/8 only

_scope: IceScope | None = None  # None: not installed, aioice as shipped
_aioice_host_addresses = aioice.ice.get_host_addresses
_aioice_add_remote_candidate = aioice.ice.Connection.add_remote_candidate
_aioice_add_remote_address = aioice.ice.Connection._add_remote_candidate
_aioice_request_received = aioice.ice.Connection.request_received


def install_ice_scope(scope: IceScope) -> None:
    """Make every aioice connection of this process keep to `scope` (replacing an earlier one)."""
    global _scope
    _scope = scope
    aioice.ice.get_host_addresses = _host_addresses
    aioice.ice.Connection.add_remote_candidate = _add_remote_candidate  # type: ignore[method-assign]
    aioice.ice.Connection._add_remote_candidate = _add_remote_address  # type: ignore[method-assign]
    aioice.ice.Connection.request_received = _request_received  # type: ignore[method-assign]


def installed_scope() -> IceScope | None:
    return _scope


@contextlib.contextmanager
def ice_scope(scope: IceScope) -> Iterator[None]:
    """`scope` for the duration of a block (tests), then the one before (or aioice as shipped)."""
    global _scope
    previous = _scope
    install_ice_scope(scope)
    try:
        yield
    finally:
        if previous is None:
            _uninstall()
        else:
            install_ice_scope(previous)


def _uninstall() -> None:
    global _scope
    _scope = None
    aioice.ice.get_host_addresses = _aioice_host_addresses
    aioice.ice.Connection.add_remote_candidate = _aioice_add_remote_candidate  # type: ignore[method-assign]
    aioice.ice.Connection._add_remote_candidate = _aioice_add_remote_address  # type: ignore[method-assign]
    aioice.ice.Connection.request_received = _aioice_request_received  # type: ignore[method-assign]


def is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlparse(url).hostname or ""
    address = _address(host)
    return host == "localhost" or (address is not None and address.is_loopback)


def interface_addresses() -> set[str]:
    """Every address of this machine's interfaces (for checking --ice-host-addresses)."""
    return {ip.ip if isinstance(ip.ip, str) else ip.ip[0] for adapter in ifaddr.get_adapters() for ip in adapter.ips}


_CANDIDATE_LINE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) (\d+) .*$")


def sdp_candidates(sdp: str) -> list[tuple[str, int]]:
    """(address, port) of every a=candidate line."""
    return [(m.group(1), int(m.group(2))) for line in sdp.splitlines() if (m := _CANDIDATE_LINE.match(line.strip()))]


def filter_sdp_candidates(sdp: str, scope: IceScope | None = None) -> str:
    """`sdp` without the candidate lines the scope refuses (default: the installed one; none: unchanged), for
    SDP handed to an ICE agent this process does not run (Janus checks whatever a caller's answer lists)."""
    scope = scope or _scope
    if scope is None:
        return sdp
    kept = []
    for line in sdp.splitlines(keepends=True):
        match = _CANDIDATE_LINE.match(line.rstrip("\r\n"))
        if match and scope.refusal(match.group(1), int(match.group(2))) is not None:
            continue
        kept.append(line)
    return "".join(kept)


# ---- the aioice hook ----------------------------------------------------------------------------------------


def _address(host: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.5 is 10.0.0.5
    return address


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _scope is None or _scope.host_addresses is None:
        return _aioice_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in _scope.host_addresses if (use_ipv4 if _address(a).version == 4 else use_ipv6)]


async def _add_remote_candidate(self: aioice.ice.Connection, remote_candidate: Candidate | None) -> None:
    if remote_candidate is not None and mdns.is_mdns_hostname(remote_candidate.host) \
            and _scope is not None and not _scope.resolves_mdns():
        log.info("ICE: remote candidate %s not resolved (only loopback peers are allowed)", remote_candidate.host)
        return
    await _aioice_add_remote_candidate(self, remote_candidate)


def _add_remote_address(self: aioice.ice.Connection, remote_candidate: Candidate, network_host: str) -> None:
    if _scope is not None:
        if remote_candidate.transport.lower() != "udp":  # aioice speaks UDP only: never paired, not worth a line
            log.debug("ICE: ignored %s candidate %s", remote_candidate.transport[:8], network_host[:64])
            return
        reason = _scope.refusal(network_host, remote_candidate.port)
        if reason is None and len(self._remote_candidates) >= MAX_REMOTE_CANDIDATES:
            reason = f"more than {MAX_REMOTE_CANDIDATES} remote candidates"
        if reason is not None:
            log.info("ICE: ignored remote candidate %s:%s (%s)", network_host[:64], remote_candidate.port, reason)
            return
    _aioice_add_remote_address(self, remote_candidate, network_host)


def _request_received(self: aioice.ice.Connection, message: Any, addr: tuple[str, int], protocol: Any) -> None:
    if _scope is not None:
        reason = _scope.refusal(addr[0], addr[1])
        known = any(c._network_host == addr[0] and c.port == addr[1] for c in self._remote_candidates)
        if reason is None and not known and len(self._remote_candidates) >= MAX_REMOTE_CANDIDATES:
            reason = f"more than {MAX_REMOTE_CANDIDATES} remote candidates"
        if reason is not None:  # unanswered: a response would be traffic to that address too
            log.debug("ICE: ignored binding request from %s:%s (%s)", addr[0], addr[1], reason)
            return
    _aioice_request_received(self, message, addr, protocol)

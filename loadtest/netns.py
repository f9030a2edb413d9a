"""Where local runs (tests, load tests, benchmarks) keep their WebRTC traffic: loopback, and the network namespaces
this process creates for programs that cannot gather ICE candidates on loopback.

Janus skips loopback interfaces when it gathers (janus_ice_setup_local in its ice.c), and with nothing left
libnice takes every other address, so on this host it would offer the LAN address. Run locally, it lives in a
namespace of its own instead, joined to this host by a veth pair on a /30 of 198.18.0.0/15 (the range set
aside for network tests, RFC 2544): its candidates are the namespace's end, ours the host's end, and nothing
goes to a real interface. Namespaces need root (or CAP_NET_ADMIN) and iproute2's `ip`.

`local_scope()` is the ICE scope of such runs (rtc.ice_scope): loopback plus the links of the namespaces open in
this process. Opening or closing a namespace re-installs it when the process runs with the local scope.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from rtc.ice_scope import LOOPBACK, LOOPBACK_NETWORK, IceScope, install_ice_scope, installed_scope, interface_addresses

TEST_NETWORKS = ipaddress.ip_network("198.18.0.0/15")


@dataclass(frozen=True)
class Namespace:
    name: str
    link: ipaddress.IPv4Network  # the /30 between this host and the namespace
    host_address: str  # this host's end of the veth pair
    inner_address: str  # the namespace's end

    def exec_prefix(self) -> list[str]:
        """Prefix of a command line that runs inside the namespace."""
        return ["ip", "netns", "exec", self.name]


_open: list[Namespace] = []


def namespaces_available() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("ip") is not None


def local_scope() -> IceScope:
    """ICE on 127.0.0.1 and this host's ends of the open namespaces; peers on loopback and those links."""
    return IceScope(("127.0.0.1", *(ns.host_address for ns in _open)), (LOOPBACK_NETWORK, *(ns.link for ns in _open)))


def local_server_flags() -> list[str]:
    """The server flags of `local_scope()`."""
    scope = local_scope()
    return ["--ice-host-addresses", ",".join(scope.host_addresses or ()),
            "--ice-allowed-peers", ",".join(str(net) for net in scope.allowed_peers or ())]


@contextlib.contextmanager
def network_namespace() -> Iterator[Namespace]:
    """A fresh namespace with a veth pair to this host; removed (with the pair) on exit."""
    if not namespaces_available():
        raise RuntimeError("a network namespace needs root and iproute2 (ip)")
    manage_scope = installed_scope() in (None, LOOPBACK, local_scope())
    tag = secrets.token_hex(3)
    link = _free_link()
    host, inner = (str(address) for address in list(link.hosts())[:2])
    namespace = Namespace(f"marionette-{tag}", link, host, inner)
    host_end, inner_end = f"mjh{tag}", f"mjn{tag}"
    _ip("netns", "add", namespace.name)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", inner_end)
        _ip("link", "set", inner_end, "netns", namespace.name)
        _ip("addr", "add", f"{host}/{link.prefixlen}", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace.name, "addr", "add", f"{inner}/{link.prefixlen}", "dev", inner_end)
        _ip("-n", namespace.name, "link", "set", inner_end, "up")
        _ip("-n", namespace.name, "link", "set", "lo", "up")
        _open.append(namespace)
        if manage_scope:
            install_ice_scope(local_scope())
        yield namespace
    finally:
        if namespace in _open:
            _open.remove(namespace)
            if manage_scope:
                install_ice_scope(local_scope())
        subprocess.run(["ip", "netns", "del", namespace.name], capture_output=True)  # takes the veth pair along


def _free_link() -> ipaddress.IPv4Network:
    taken = interface_addresses()
    while True:  # a random /30, so that parallel runs on one host do not collide
        start = TEST_NETWORKS.network_address + 4 * secrets.randbelow(TEST_NETWORKS.num_addresses // 4)
        link = ipaddress.ip_network(f"{start}/30")
        if not any(str(address) in taken for address in link):
            return link


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")

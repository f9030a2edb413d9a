"""Test traffic stays on loopback: a real test call (a load-test peer against a server started by
loadtest.local_server) offers, answers, checks and sends its media on 127.0.0.0/8 only, on both sides.

The machine these tests run on has an ordinary network interface; aioice by itself gathers on it (and leaves
127.0.0.1 out), so without the ICE scope every test call's media would go to that interface's address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, SyntheticPeer

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
# Both the candidates and the default address (c=) of every media section.
ADDRESS_LINES = re.compile(r"^(?:a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ |c=IN IP[46] (\S+))", re.M)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("loopback"), "--generator", "passthrough") as running:
        yield running


def sdp_addresses(sdp: str) -> list[str]:
    return [a or c for a, c in ADDRESS_LINES.findall(sdp)]


def udp_sockets_of(pid: int) -> list[tuple[str, int]]:
    """(local address, port) of every UDP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    sockets = []
    for table, width in (("udp", 8), ("udp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                hex_address, hex_port = fields[1].split(":")
                raw = bytes.fromhex(hex_address)
                # /proc writes each 32-bit word in host (little-endian) order.
                packed = b"".join(raw[i:i + 4][::-1] for i in range(0, width // 2, 4))
                sockets.append((str(ipaddress.ip_address(packed)), int(hex_port, 16)))
    return sockets


def test_a_test_call_offers_checks_and_streams_on_loopback_only(server: RunningServer,
                                                                 talking_face_frames: list[np.ndarray]) -> None:
    async def call() -> tuple[str, str, list, tuple, list]:
        peer = SyntheticPeer(talking_face_frames[:30], PeerConfig(url=server.url, measure=False))
        async with peer:
            deadline = time.monotonic() + 20
            while len(peer.stats.received) < 10 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert len(peer.stats.received) >= 10, "the call carried no avatar frames"
            pc = peer._pc
            connection = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection
            nominated = connection._nominated[1]
            checked = [pair.remote_addr for pair in connection._check_list]
            server_sockets = udp_sockets_of(server.process.pid)  # while the call runs
            return (pc.localDescription.sdp, pc.remoteDescription.sdp, checked,
                    (nominated.local_addr, nominated.remote_addr), server_sockets)

    offer, answer, checked, (local, remote), server_sockets = asyncio.run(call())
    for name, sdp in (("offer", offer), ("answer", answer)):
        addresses = sdp_addresses(sdp)
        assert addresses, f"the {name} lists no address"
        outside = [a for a in addresses if ipaddress.ip_address(a) not in LOOPBACK]
        assert not outside, f"the {name} lists addresses outside 127.0.0.0/8: {outside}"
    for host, _port in [*checked, local, remote]:
        assert ipaddress.ip_address(host) in LOOPBACK, f"an ICE check or the media went to {host}"
    # The server's own side: every UDP socket it holds during the call (its ICE sockets) is on loopback.
    assert server_sockets and all(ipaddress.ip_address(a) in LOOPBACK for a, _ in server_sockets), server_sockets

"""rtc.ice_scope against real aioice and aiortc connections on loopback: what is gathered, which remote
candidates are kept, and that a binding request from outside the scope gets no answer (no peer-reflexive
candidate). Addresses outside the scope that a check could really reach are other loopback addresses
(127.0.0.2, 127.0.0.3): a scope of 127.0.0.1/32 must refuse them, and nothing leaves the machine even if it did not.
"""

from __future__ import annotations

import asyncio
import socket

import pytest
from aioice import Candidate, Connection, stun
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from rtc.ice_scope import IceScope, filter_sdp_candidates, ice_scope, sdp_candidates

ONLY_127_0_0_1 = IceScope.of(["127.0.0.1"], ["127.0.0.1/32"])


@pytest.mark.parametrize(("host", "port", "reason"), [
    ("10.0.0.5", 53, "port below 1024"),
    ("203.0.113.7", 0, "port below 1024"),
    ("169.254.169.254", 8080, "link-local"),  # the cloud metadata service
    ("fe80::1", 5000, "link-local"),
    ("0.0.0.0", 5000, "unspecified"),
    ("224.0.0.251", 5353, "multicast"),
    ("255.255.255.255", 5000, "broadcast"),
    ("240.0.0.1", 5000, "reserved"),
    ("127.0.0.1", 5000, "loopback"),  # the default gathers no loopback, so no loopback peer is real
    ("::ffff:169.254.169.254", 5000, "link-local"),  # IPv4 written as IPv6 is still IPv4
    ("example.com", 5000, "not an IP address"),
])
def test_the_default_scope_refuses_system_ports_and_special_addresses(host: str, port: int, reason: str) -> None:
    assert reason in (IceScope().refusal(host, port) or "")


def test_the_default_scope_admits_ordinary_peers_and_a_list_only_its_networks() -> None:
    default = IceScope()
    for host, port in (("203.0.113.7", 40000), ("10.0.0.5", 5000), ("2001:db8::7", 40000)):
        assert default.refusal(host, port) is None
    assert IceScope.of(["127.0.0.1"]).refusal("127.0.0.1", 5000) is None  # gathering on loopback: loopback peers
    assert IceScope.of(allowed_peers=["::1/128"]).refusal("::1", 5000) is None
    assert "loopback" in default.refusal("::1", 5000)
    listed = IceScope.of(allowed_peers=["203.0.113.0/24", "2001:db8::/32"])
    assert listed.refusal("203.0.113.7", 40000) is None and listed.refusal("2001:db8::7", 40000) is None
    assert "outside the allowed" in listed.refusal("10.0.0.5", 5000)
    assert "port below" in listed.refusal("203.0.113.7", 53)  # a list never admits the always-refused ones
    with pytest.raises(ValueError, match="not a network"):
        IceScope.of(allowed_peers=["10.0.0.0/33"])


def test_sdp_for_another_ice_agent_keeps_only_candidates_in_scope() -> None:
    sdp = ("v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n"
           "a=candidate:2 1 udp 2130706431 10.0.0.5 53 typ host\r\n"
           "a=candidate:3 1 udp 2130706431 203.0.113.7 40000 typ host\r\na=end-of-candidates\r\n")
    kept = filter_sdp_candidates(sdp, ONLY_127_0_0_1)
    assert sdp_candidates(kept) == [("127.0.0.1", 40000)] and kept.endswith("a=end-of-candidates\r\n")


def test_gathering_keeps_to_the_chosen_addresses_loopback_included() -> None:
    async def gathered() -> list[str]:
        connection = Connection(ice_controlling=True)
        await connection.gather_candidates()
        hosts = [c.host for c in connection.local_candidates]
        await connection.close()
        return hosts

    with ice_scope(ONLY_127_0_0_1):
        assert asyncio.run(gathered()) == ["127.0.0.1"]  # aioice by itself leaves 127.0.0.1 out


def offer_with(sdp: str, *lines: str) -> str:
    """The SDP with extra candidate lines in its (bundled) first media section."""
    head, media = sdp.split("\r\nm=", 1)
    first, _, rest = media.partition("\r\nm=")
    first = first.rstrip("\r\n") + "\r\n" + "\r\n".join(lines)
    return head + "\r\nm=" + first + (("\r\nm=" + rest) if rest else "\r\n")


def ice_connection(pc: RTCPeerConnection) -> Connection:
    return pc.getTransceivers()[0].receiver.transport.transport.iceGatherer._connection


def test_an_offers_candidates_outside_the_scope_are_never_paired_or_checked() -> None:
    """The server's side of a call (aiortc answering an offer, as server.negotiation does) with an offer that also
    lists a DNS port on an internal host, a public host, mDNS and two loopback addresses outside 127.0.0.1/32."""

    async def call() -> None:
        caller, server = (RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2))
        try:
            caller.addTransceiver("video", direction="sendrecv")
            caller.createDataChannel("status")
            await caller.setLocalDescription(await caller.createOffer())
            assert {host for host, _ in sdp_candidates(caller.localDescription.sdp)} == {"127.0.0.1"}
            real = sdp_candidates(caller.localDescription.sdp.split("\r\nm=")[1])  # the bundle's transport
            listed = offer_with(caller.localDescription.sdp,
                                "a=candidate:9 1 udp 2130706431 10.0.0.5 53 typ host",
                                "a=candidate:8 1 udp 2130706431 203.0.113.7 40000 typ host",
                                "a=candidate:7 1 udp 2130706431 127.0.0.2 40000 typ host",
                                "a=candidate:6 1 udp 2130706431 127.0.0.3 40001 typ srflx raddr 0.0.0.0 rport 0",
                                "a=candidate:5 1 udp 2130706431 0c8f3fb9-7b5e-4c3e.local 40002 typ host")
            await server.setRemoteDescription(RTCSessionDescription(listed, "offer"))
            connection = ice_connection(server)
            # Before any check could start: only the caller's real candidate is known.
            assert [(c.host, c.port) for c in connection.remote_candidates] == real
            await server.setLocalDescription(await server.createAnswer())
            await caller.setRemoteDescription(server.localDescription)
            for _ in range(100):
                if server.iceConnectionState == "completed" and caller.iceConnectionState == "completed":
                    break
                await asyncio.sleep(0.05)
            assert server.iceConnectionState == "completed"  # the call itself connects
            assert {pair.remote_addr for pair in connection._check_list} <= set(real)
        finally:
            await caller.close()
            await server.close()

    with ice_scope(ONLY_127_0_0_1):
        asyncio.run(call())


def test_a_binding_request_from_outside_the_scope_gets_no_answer_and_no_candidate() -> None:
    """A peer-reflexive candidate is learnt from the source of a binding request: one from 127.0.0.2 (outside
    127.0.0.1/32) is dropped unanswered, the same request from 127.0.0.1 is answered."""

    async def ask(connection: Connection, source: str) -> bool:
        target = connection.local_candidates[0]
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{connection.local_username}:peer"
        request.attributes["PRIORITY"] = 1
        request.attributes["ICE-CONTROLLED"] = 1
        request.add_message_integrity(connection.local_password.encode())
        request.add_fingerprint()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((source, 0))
            sock.setblocking(False)
            sock.sendto(bytes(request), (target.host, target.port))
            try:
                reply = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 2048), 1.0)
            except TimeoutError:
                return False
        return stun.parse_message(reply).transaction_id == request.transaction_id

    async def run() -> tuple[bool, bool, list]:
        connection = Connection(ice_controlling=True)
        await connection.gather_candidates()
        connection.remote_username, connection.remote_password = "peer", "p" * 22
        try:
            outside, inside = await ask(connection, "127.0.0.2"), await ask(connection, "127.0.0.1")
            return outside, inside, [addr for _, addr, _ in connection._early_checks]
        finally:
            await connection.close()

    with ice_scope(ONLY_127_0_0_1):
        outside, inside, checks = asyncio.run(run())
    assert not outside and inside
    assert [host for host, _ in checks] == ["127.0.0.1"]  # the refused one is not waiting to become a candidate


def test_candidates_beyond_the_cap_are_ignored() -> None:
    from rtc.ice_scope import MAX_REMOTE_CANDIDATES

    async def add(count: int) -> int:
        connection = Connection(ice_controlling=True)
        await connection.gather_candidates()
        for index in range(count):
            await connection.add_remote_candidate(Candidate(
                foundation=str(index), component=1, transport="udp", priority=1, host="127.0.0.1",
                port=20000 + index, type="host"))
        kept = len(connection.remote_candidates)
        await connection.close()
        return kept

    with ice_scope(ONLY_127_0_0_1):
        assert asyncio.run(add(MAX_REMOTE_CANDIDATES + 5)) == MAX_REMOTE_CANDIDATES

"""WebRTC negotiation of one session: the peer connection, the caller's offer, and the answer."""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server.errors import ApiError
from server.sdp import add_bitrate_hints, ice_server
from server.session import Session


def new_peer_connection(ice_servers: tuple[str, ...]) -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[ice_server(url) for url in ice_servers]))


async def answer_offer(session: Session, offer_sdp: str,
                       before_answer: Callable[[Session], None] | None = None) -> str:
    """The answer SDP to the caller's offer, with the avatar track added (and whatever `before_answer` adds).
    Raises ApiError(400) for an offer we cannot serve; the caller closes the peer connection on any error."""
    pc = session.pc
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    except Exception as error:  # aiortc raises assorted errors for malformed SDP
        raise ApiError(400, f"invalid SDP offer: {error}") from error
    if not any(t.kind == "video" for t in pc.getTransceivers()):
        raise ApiError(400, "the offer has no video track: send your camera (sendrecv video)")
    pc.addTrack(session.avatar_track)
    if before_answer is not None:
        before_answer(session)
    await pc.setLocalDescription(await pc.createAnswer())
    return add_bitrate_hints(pc.localDescription.sdp)

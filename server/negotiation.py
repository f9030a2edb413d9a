"""WebRTC negotiation of one session: the peer connection, the caller's offer, and the answer.

What a caller may receive on is limited here: its camera (the first video it sends) and, in a room, the
tiles it is allowed; every other m-line (audio, more video) is answered inactive, so aiortc never starts a
receiver or a decoder for it (DESIGN §7: it would decode and queue them all, unread)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from server.errors import ApiError
from server.sdp import add_bitrate_hints
from server.session import Session

log = logging.getLogger(__name__)
_FINGERPRINT = re.compile(r"^a=fingerprint:\S+ [0-9A-Fa-f:]+\s*$", re.MULTILINE)


def new_peer_connection(ice_servers: list[RTCIceServer]) -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))


def check_offer_text(offer_sdp: str) -> None:
    """What aiortc accepts but cannot serve: without a DTLS fingerprint the session dies after the answer."""
    if not offer_sdp.lstrip().startswith("v=0"):
        raise ApiError(400, "invalid SDP offer: it must start with v=0 (send pc.localDescription.sdp)")
    if not _FINGERPRINT.search(offer_sdp):
        raise ApiError(400, "invalid SDP offer: no a=fingerprint line (WebRTC needs DTLS)")


async def answer_offer(session: Session, offer_sdp: str,
                       before_answer: Callable[[Session], None] | None = None) -> str:
    """The answer SDP to the caller's offer, with the avatar track added (and whatever `before_answer` adds).
    Raises ApiError(400) for an offer we cannot serve; the caller closes the peer connection on any error."""
    check_offer_text(offer_sdp)
    pc = session.pc
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    except Exception as error:  # aiortc raises assorted errors for malformed SDP; their text means nothing to a caller
        log.info("unreadable SDP offer: %r", error)
        raise ApiError(400, "invalid SDP offer: it could not be read (is it complete and unmodified?)") from error
    camera = next((t for t in pc.getTransceivers() if t.kind == "video" and "send" in (t._offerDirection or "")),
                  None)
    if camera is None:
        raise ApiError(400, "the offer has no video track: send your camera (sendrecv video)")
    camera.sender.replaceTrack(session.avatar_track)
    camera.direction = "sendrecv"
    if before_answer is not None:
        before_answer(session)
    for transceiver in pc.getTransceivers():
        if transceiver is not camera and transceiver.sender.track is None:
            transceiver.direction = "inactive"  # audio, extra video: never received, never decoded
    await pc.setLocalDescription(await pc.createAnswer())
    return add_bitrate_hints(pc.localDescription.sdp)

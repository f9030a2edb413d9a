"""A lower-latency video jitter buffer for aiortc's receivers.

aiortc emits a video frame only when the first packet of the *next* frame arrives, adding one
frame interval (~33 ms at 30 fps) per receive hop. A frame is complete when its last packet (RTP
marker bit) is in and no packet before it is missing, so we emit it then. Payload-less packets
(padding, used by Chromium for bandwidth probing) must never reach the decoder as a frame: an
empty frame means end-of-stream to aiortc's decoder thread and stops it for good.
"""

from __future__ import annotations

import aiortc.rtcrtpreceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket


class LowLatencyJitterBuffer(JitterBuffer):
    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = super().add(packet)
        if frame is not None and not frame.data:
            frame = None  # only padding: nothing to decode
        if frame is None and self._is_video and packet.marker:
            frame = self._frame_ending_at(packet)
            if frame is not None and not frame.data:
                frame = None
        return pli_flag, frame

    def _frame_ending_at(self, last: RtpPacket) -> JitterFrame | None:
        if self._origin is None:
            return None
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or packet.timestamp != last.timestamp:
                return None  # a gap (await retransmission) or an older frame still incomplete
            packets.append(packet)
            if packet.sequence_number == last.sequence_number:
                break
        else:
            return None
        self.remove(len(packets))
        return JitterFrame(data=b"".join(p._data for p in packets), timestamp=last.timestamp)  # type: ignore[attr-defined]


def install_low_latency_jitter_buffer() -> None:
    """Make every aiortc receiver created after this call use LowLatencyJitterBuffer."""
    aiortc.rtcrtpreceiver.JitterBuffer = LowLatencyJitterBuffer  # type: ignore[misc]

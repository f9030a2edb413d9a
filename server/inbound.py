"""The inbound frame pump: a caller's video track drained into the session's latest-frame slot."""

from __future__ import annotations

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from server import metrics
from server.batcher import FrameBatcher
from server.session import Session


async def pump_frames(session: Session, track: MediaStreamTrack, batcher: FrameBatcher) -> None:
    """Drain the inbound track as fast as it decodes; keep only the newest frame (a stale one is dropped)."""
    try:
        while True:
            frame = await track.recv()
            session.frame_received()
            metrics.FRAMES_IN.inc()
            if session.slot.put(frame):
                session.frames_dropped += 1
                metrics.FRAMES_DROPPED.labels(reason="stale").inc()
            batcher.frame_arrived()
    except MediaStreamError:
        pass

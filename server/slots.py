"""Per-session single-frame slots: a newer frame replaces an unconsumed one, never queues."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import av
from aiortc.mediastreams import MediaStreamError


@dataclass
class DriverFrame:
    frame: av.VideoFrame
    arrived: float  # time.perf_counter() when it was decoded and put in the slot


class LatestFrameSlot:
    """Holds at most one driver frame; `put` returns True when it replaced a stale one."""

    def __init__(self) -> None:
        self._item: DriverFrame | None = None

    def put(self, frame: av.VideoFrame) -> bool:
        dropped = self._item is not None
        self._item = DriverFrame(frame, time.perf_counter())
        return dropped

    def take(self) -> DriverFrame | None:
        item, self._item = self._item, None
        return item

    @property
    def ready(self) -> bool:
        return self._item is not None


class OutputSlot:
    """The newest avatar frame for one consumer (an outbound track); older unsent frames are replaced."""

    def __init__(self) -> None:
        self._frame: av.VideoFrame | None = None
        self._event = asyncio.Event()
        self.closed = False

    def put(self, frame: av.VideoFrame) -> None:
        self._frame = frame
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    async def get(self) -> av.VideoFrame:
        """The next frame; raises MediaStreamError once closed (ends the consuming track)."""
        while True:
            await self._event.wait()
            self._event.clear()
            if self.closed:
                raise MediaStreamError
            if self._frame is not None:
                frame, self._frame = self._frame, None
                return frame

"""Photo decodes on threads of their own, with a bounded queue: each decode may allocate up to
photos.MAX_DECODE_BYTES (and ~1.5 times that at its peak), so how many run at once bounds what uploads can make
the server allocate. Past the queue an upload gets 503 + Retry-After instead of waiting without limit."""

from __future__ import annotations

import asyncio
import concurrent.futures

import numpy as np

from server.errors import ApiError
from server.photos import decode_photo

RETRY_AFTER_S = 2  # a decode takes well under a second or two


class DecodePool:
    def __init__(self, threads: int, queue: int) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
        self._limit = threads + queue
        self._pending = 0  # running + waiting; counted on the event loop, so no lock

    async def decode(self, data: bytes, label: str) -> np.ndarray:
        """decode_photo(data, label) on a decode thread; 503 when every thread is busy and the queue is full."""
        if self._pending >= self._limit:
            raise ApiError(503, "busy decoding other uploads; try again shortly",
                           {"Retry-After": str(RETRY_AFTER_S)})
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, decode_photo, data, label)
        finally:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

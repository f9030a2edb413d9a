"""Uploads in progress per client address: each one decodes photos and takes the preparation thread to prepare
them, so one client may not run many at once (HTTP 429)."""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator

from server.errors import ApiError


class UploadLimiter:
    def __init__(self, per_client: int) -> None:
        self._per_client = per_client
        self._running: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def slot(self, client: str) -> Iterator[None]:
        if self._running[client] >= self._per_client:
            raise ApiError(429, f"an upload from you is still being prepared ({self._per_client} at a time); "
                                "try again when it is done", {"Retry-After": "2"})
        self._running[client] += 1
        try:
            yield
        finally:
            self._running[client] -= 1
            if not self._running[client]:
                del self._running[client]

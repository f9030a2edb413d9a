"""Requests per client address in a sliding window: a cheap endpoint that hands out something scarce (TURN
credentials: every one can hold relay allocations until it expires) must not be called without bound."""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

from server.errors import ApiError

MAX_TRACKED_CLIENTS = 10_000  # memory bound when many addresses call once each: the oldest are forgotten


class PerClientRate:
    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window_s = window_s
        self._clock = clock
        self._calls: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def check(self, client: str, what: str) -> None:
        """Count one call of `client`; HTTP 429 with Retry-After once it made `limit` in the window."""
        now = self._clock()
        calls = self._calls.pop(client, None) or collections.deque()
        while calls and calls[0] <= now - self._window_s:
            calls.popleft()
        self._calls[client] = calls  # most recent last
        if len(calls) >= self._limit:
            retry_after = max(1, math.ceil(calls[0] + self._window_s - now))
            raise ApiError(429, f"too many {what} requests from your address ({self._limit} per "
                                f"{self._window_s:g} s); try again in {retry_after} s",
                           {"Retry-After": str(retry_after)})
        calls.append(now)
        while len(self._calls) > MAX_TRACKED_CLIENTS:
            self._calls.popitem(last=False)

"""Per-client-address limits on calls (HTTP 429): sessions held at once, and offers in any 60 s.

Every offer that gets past these checks and admission costs a peer connection and a negotiation, and every
session a place that admission counts against everyone; without a per-client bound one address could take
them all. An offer counts when it starts negotiating (a 503 from admission does not use up the rate, so the
demo page's busy-retry loop is not punished); a session's place is held until it closes. Memory stays bounded:
a client's entry goes once it holds no session and its last offer is older than the window.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable

from server.errors import ApiError

WINDOW_S = 60.0
SESSIONS_RETRY_AFTER_S = 5  # about how long a caller's other call takes to end once hung up (or idle-closed)


class CallRate:
    """Calls per client address in the last WINDOW_S. Clients are kept in order of their latest call (oldest
    first), so forgetting the idle ones stops at the first recent one: memory follows the active clients."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._calls: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._calls)

    def clients(self) -> set[str]:
        return set(self._calls)

    def wait_s(self, client: str) -> int | None:
        """Seconds until `client` may call again, or None when it may now."""
        calls = self._calls.get(client)
        if calls is None:
            return None
        horizon = self._clock() - WINDOW_S
        while calls and calls[0] <= horizon:
            calls.popleft()
        if len(calls) < self.limit:
            return None
        return max(1, math.ceil(calls[0] + WINDOW_S - self._clock()))

    def count(self, client: str) -> None:
        self._calls.setdefault(client, collections.deque()).append(self._clock())
        self._calls.move_to_end(client)
        self.forget_idle()

    def forget_idle(self) -> None:
        horizon = self._clock() - WINDOW_S
        while self._calls:
            client, calls = next(iter(self._calls.items()))
            if calls[-1] > horizon:
                break
            del self._calls[client]

    def check_and_count(self, client: str, what: str) -> None:
        """Count one call of `client`, or raise HTTP 429 with Retry-After once it made `limit` in the window."""
        wait = self.wait_s(client)
        if wait is not None:
            raise ApiError(429, f"too many {what} from this address ({self.limit} a minute at most); try again "
                                f"in {wait} s", {"Retry-After": str(wait)})
        self.count(client)


class ClientLimits:
    def __init__(self, max_sessions: int, max_offers_per_window: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_sessions = max_sessions
        self._sessions: collections.Counter[str] = collections.Counter()  # open or being negotiated
        self._offers = CallRate(max_offers_per_window, clock)

    def __len__(self) -> int:
        """Clients with an entry (for tests: idle ones must go)."""
        return len(self._sessions.keys() | self._offers.clients())

    def check(self, client: str) -> None:
        """Raise a 429 ApiError unless `client` may start one more session now."""
        if self._sessions[client] >= self._max_sessions:
            raise ApiError(429, f"you already have {self._max_sessions} calls open from this address (the most "
                                "allowed); hang up one of them first", {"Retry-After": str(SESSIONS_RETRY_AFTER_S)})
        wait = self._offers.wait_s(client)
        if wait is not None:
            raise ApiError(429, f"too many calls started from this address ({self._offers.limit} a minute at "
                                f"most); try again in {wait} s", {"Retry-After": str(wait)})

    def claim(self, client: str) -> None:
        """Count an offer and a session place for `client` (after check()); release() gives the place back."""
        self._sessions[client] += 1
        self._offers.count(client)

    def release(self, client: str) -> None:
        self._sessions[client] -= 1
        if self._sessions[client] <= 0:
            del self._sessions[client]

    def forget_idle(self) -> None:
        """Drop the offer history of clients whose latest offer left the window (on housekeeping ticks)."""
        self._offers.forget_idle()

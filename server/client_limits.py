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


class ClientLimits:
    def __init__(self, max_sessions: int, max_offers_per_window: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_sessions = max_sessions
        self._max_offers = max_offers_per_window
        self._clock = clock
        self._sessions: collections.Counter[str] = collections.Counter()  # open or being negotiated
        # Offer times per client, oldest first; the clients ordered by their latest offer (oldest first).
        self._offers: collections.OrderedDict[str, collections.deque[float]] = collections.OrderedDict()

    def __len__(self) -> int:
        """Clients with an entry (for tests: idle ones must go)."""
        return len(self._offers.keys() | self._sessions.keys())

    def check(self, client: str) -> None:
        """Raise a 429 ApiError unless `client` may start one more session now."""
        if self._sessions[client] >= self._max_sessions:
            raise ApiError(429, f"you already have {self._max_sessions} calls open from this address (the most "
                                "allowed); hang up one of them first", {"Retry-After": str(SESSIONS_RETRY_AFTER_S)})
        offers = self._recent(client)
        if len(offers) >= self._max_offers:
            wait = max(1, math.ceil(offers[0] + WINDOW_S - self._clock()))
            raise ApiError(429, f"too many calls started from this address ({self._max_offers} a minute at "
                                f"most); try again in {wait} s", {"Retry-After": str(wait)})

    def claim(self, client: str) -> None:
        """Count an offer and a session place for `client` (after check()); release() gives the place back."""
        self._sessions[client] += 1
        self._offers.setdefault(client, collections.deque()).append(self._clock())
        self._offers.move_to_end(client)

    def release(self, client: str) -> None:
        self._sessions[client] -= 1
        if self._sessions[client] <= 0:
            del self._sessions[client]

    def forget_idle(self) -> None:
        """Drop the offer history of clients whose latest offer left the window (called on housekeeping ticks);
        the clients are kept in order of their latest offer, so this stops at the first recent one."""
        horizon = self._clock() - WINDOW_S
        while self._offers:
            client, offers = next(iter(self._offers.items()))
            if offers[-1] > horizon:
                break
            del self._offers[client]

    def _recent(self, client: str) -> collections.deque[float]:
        offers = self._offers.get(client, collections.deque())
        horizon = self._clock() - WINDOW_S
        while offers and offers[0] <= horizon:
            offers.popleft()
        return offers

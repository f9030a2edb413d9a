"""How many rooms nobody has joined yet one client may hold open.

A room that nobody joins lives for --room-unjoined-ttl-s and counts against --max-rooms meanwhile, so without
a per-client bound one client could fill every room place with a burst of POST /api/rooms. This is a count
of rooms still open, not a request rate: joining a room (by anyone) or its expiry frees the place at once.
Both room kinds (the built-in relay and Janus) go through it, from the route handlers.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from server.errors import ApiError


@dataclass
class _Unjoined:
    client: str
    created: float
    room_id: str | None = None  # None while the room is still being created


class UnjoinedRoomQuota:
    def __init__(self, per_client: int, ttl_s: float) -> None:
        self._per_client = per_client
        self._ttl_s = ttl_s
        # At most one entry per open unjoined room (bounded by --max-rooms), so a list is small enough.
        self._entries: list[_Unjoined] = []

    @contextlib.contextmanager
    def creating(self, client: str) -> Iterator[Callable[[str], None]]:
        """Holds a place for `client`'s new room while it is created (429 when they have no place left);
        yields the function that records the created room's id. An exception gives the place back."""
        now = time.monotonic()
        self._entries = [e for e in self._entries if now - e.created < self._ttl_s]
        held = [e for e in self._entries if e.client == client]
        if len(held) >= self._per_client:
            wait = math.ceil(min(e.created for e in held) + self._ttl_s - now)
            raise ApiError(429, f"this client already has {len(held)} rooms nobody has joined: join one (or wait "
                           f"{wait} s for one to expire) before creating another",
                           headers={"Retry-After": str(max(1, wait))})
        entry = _Unjoined(client, now)
        self._entries.append(entry)
        try:
            yield lambda room_id: setattr(entry, "room_id", room_id)
        except BaseException:
            self._entries.remove(entry)
            raise

    def joined(self, room_id: str) -> None:
        """Someone joined `room_id`: it no longer counts against its creator."""
        self._entries = [e for e in self._entries if e.room_id != room_id]

"""Housekeeping of open sessions: status to every caller twice a second, silent sessions closed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from server.session import Session

log = logging.getLogger(__name__)
STATUS_INTERVAL_S = 0.5


async def housekeep(sessions: Callable[[], Iterable[Session]], close: Callable[[Session, str], Awaitable[None]],
                    idle_timeout_s: float, tick: Callable[[], None] = lambda: None) -> None:
    """Runs until cancelled; a session that sent no video and no ping for `idle_timeout_s` is closed; `tick`
    runs every interval (admission's CPU sample)."""
    while True:
        await asyncio.sleep(STATUS_INTERVAL_S)
        tick()
        now = time.monotonic()
        for session in list(sessions()):
            if now - session.last_seen > idle_timeout_s:
                await close(session, "no video or ping from the peer (timed out)")
                continue
            try:
                session.send_status()
            except Exception:  # a closing channel must not stop housekeeping
                log.debug("status send failed for %s", session.id, exc_info=True)

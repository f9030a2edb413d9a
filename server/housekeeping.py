"""Housekeeping of open sessions: status to every caller twice a second; a session is closed when its camera has
sent nothing for a while (pings do not count: a peer that only pings would hold a place for ever) or when the
call reaches its longest allowed length."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from server.session import Session

log = logging.getLogger(__name__)
STATUS_INTERVAL_S = 0.5


@dataclass(frozen=True)
class SessionLimits:
    video_idle_timeout_s: float  # --video-idle-timeout-s
    max_session_s: float  # --max-session-s

    def reason_to_close(self, created: float, last_frame: float, now: float) -> str | None:
        """Why a session opened at `created` whose camera's latest frame came at `last_frame` (its set-up time
        before the first) ends at `now`, or None while it may go on."""
        if now - created >= self.max_session_s:
            return (f"the call reached the longest a call may last ({_duration(self.max_session_s)}); "
                    "start a new one to go on")
        if now - last_frame > self.video_idle_timeout_s:
            return f"no video from your camera for {self.video_idle_timeout_s:g} s"
        return None


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


async def housekeep(sessions: Callable[[], Iterable[Session]], close: Callable[[Session, str], Awaitable[None]],
                    limits: SessionLimits, tick: Callable[[], None] = lambda: None) -> None:
    """Runs until cancelled; `tick` runs every interval (admission's CPU sample, per-client bookkeeping)."""
    while True:
        await asyncio.sleep(STATUS_INTERVAL_S)
        tick()
        now = time.monotonic()
        for session in list(sessions()):
            reason = limits.reason_to_close(session.created, session.last_frame, now)
            if reason is not None:
                await close(session, reason)
                continue
            try:
                session.send_status()
            except Exception:  # a closing channel must not stop housekeeping
                log.debug("status send failed for %s", session.id, exc_info=True)

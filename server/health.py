"""/healthz: the model loop is alive when no batch has been running, and no frame waiting, for too long."""

from __future__ import annotations

import time

from server.batcher import FrameBatcher
from server.supervisor import Supervisor


def health(batcher: FrameBatcher, supervisor: Supervisor, sessions: int, stuck_after_s: float) -> tuple[int, dict]:
    """(HTTP status, body): 200 "ok" or 503 "stuck", with the age of the last finished batch."""
    now = time.monotonic()
    running_s = now - batcher.in_flight_since if batcher.in_flight_since is not None else 0.0
    waiting_s = now - batcher.waiting_since if batcher.waiting_since is not None else 0.0
    stuck = max(running_s, waiting_s) > stuck_after_s
    body = {
        "status": "stuck" if stuck else "ok",
        "sessions": sessions,
        "last_batch_age_s": round(now - batcher.last_done, 3) if batcher.last_done is not None else None,
        "batch_running_s": round(running_s, 3),
        "frames_waiting_s": round(waiting_s, 3),
        "tasks": supervisor.status(),
    }
    return (503 if stuck else 200), body

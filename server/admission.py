"""Admission: a new session is admitted only while the measured frame budget leaves room for it.

Two budgets, both measured on this server:
- the model thread: the running sessions' frames a second plus `target_fps` for the new one, each frame
  costing the batcher's measured wall time per frame at the current batch sizes (contention from codecs and
  other processes shows up in it), must fit in `headroom` of the one model thread;
- the CPU: the process's CPU time per frame (model + VP8 decode/encode + event loop), measured over the
  last seconds, times the same frames a second must fit in `headroom` of the cores this process may use.
A running session is charged what it sends: `target_fps` until its camera has been measured for a whole
window (server.session.FPS_WINDOW_S), then its measured input rate, at least FLOOR_FPS (a camera may speed up
again) and at most `target_fps` (the rate the server promises). So a silent session or a 10 fps camera does
not take a full session's share; a new session is always budgeted at the full `target_fps`.
Before any frame was measured the model cost comes from the start-up warm-up (server.warmup) and the media
cost from DESIGN §5 (VP8 decode + encode of a 640x480 frame ~13 ms CPU on the 2-core reference machine).
An idle server always admits its first session; --max-sessions stays a hard cap whatever the budget says.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from server.batcher import FrameBatcher
from server.errors import ApiError

MEDIA_PRIOR_S = 0.013  # CPU seconds per frame for the codecs before the process has measured its own
SAMPLE_MIN_FRAMES = 30  # a CPU sample needs this many frames to say something
CPU_SMOOTHING = 0.3
FLOOR_FPS = 5.0  # the least a measured session is charged
RETRY_AFTER_S = 5  # what a refused caller is told to wait: about one measurement window


class BusyError(ApiError):
    """503 with a Retry-After header: the server is at its budget (or its cap); the caller should retry."""

    def __init__(self, reason: str, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(503, message, {"Retry-After": str(retry_after_s)})
        self.reason = reason  # full (the --max-sessions cap) or busy (the measured budget)


@dataclass(frozen=True)
class Budget:
    sessions: int  # admitted or being negotiated
    charged_fps: float  # what those sessions are charged, frames a second in all
    model_s_per_frame: float
    cpu_s_per_frame: float
    model_load: float  # fraction of the model thread the sessions + 1 would need
    cpu_load: float  # fraction of the usable cores the sessions + 1 would need

    def as_dict(self) -> dict:
        return {"sessions": self.sessions, "charged_fps": round(self.charged_fps, 1),
                "model_ms_per_frame": round(1000 * self.model_s_per_frame, 2),
                "cpu_ms_per_frame": round(1000 * self.cpu_s_per_frame, 2),
                "model_load_with_one_more": round(self.model_load, 3),
                "cpu_load_with_one_more": round(self.cpu_load, 3)}


class Admission:
    def __init__(self, batcher: FrameBatcher, max_sessions: int, target_fps: float, headroom: float,
                 measured: bool, cores: int | None = None) -> None:
        self._batcher = batcher
        self._max_sessions = max_sessions
        self._fps = target_fps
        self._headroom = headroom
        self._measured = measured
        self._cores = cores or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                else (os.cpu_count() or 1))  # the cores this process may use
        self.warmup_s_per_frame: float | None = None  # set by server.warmup
        self._cpu_s_per_frame: float | None = None
        self._sample = (time.process_time(), batcher.frames_processed)

    def sample_cpu(self) -> None:
        """Called every housekeeping tick: process CPU per processed frame over the time since the last sample."""
        cpu, frames = time.process_time(), self._batcher.frames_processed
        last_cpu, last_frames = self._sample
        if frames < last_frames:  # counters restarted
            self._sample = (cpu, frames)
        if frames - last_frames < SAMPLE_MIN_FRAMES:
            return
        per_frame = (cpu - last_cpu) / (frames - last_frames)
        previous = self._cpu_s_per_frame
        self._cpu_s_per_frame = per_frame if previous is None else previous + CPU_SMOOTHING * (per_frame - previous)
        self._sample = (cpu, frames)

    def charge(self, fps_in: float | None) -> float:
        """Frames a second one running session is budgeted at, from its measured input rate (None: not yet)."""
        if fps_in is None:
            return self._fps
        return min(self._fps, max(FLOOR_FPS, fps_in))

    def budget(self, rates: Sequence[float | None]) -> Budget:
        """The budget with one more session, given each running (or negotiating) session's input rate."""
        model = self._batcher.seconds_per_frame or self.warmup_s_per_frame or 0.0
        cpu = self._cpu_s_per_frame if self._cpu_s_per_frame is not None else model + MEDIA_PRIOR_S
        charged = sum(self.charge(rate) for rate in rates)
        demand = charged + self._fps
        return Budget(len(rates), charged, model, cpu, demand * model, demand * cpu / self._cores)

    def check(self, rates: Sequence[float | None]) -> None:
        """Raise BusyError unless one more session fits; `rates` has one entry per session admitted or being
        negotiated: its measured input frame rate, None until measured."""
        sessions = len(rates)
        if sessions >= self._max_sessions:
            raise BusyError("full", f"server full: {self._max_sessions} sessions already running; retrying in "
                            f"{RETRY_AFTER_S} s may find a free place")
        if not self._measured or sessions == 0:
            return
        budget = self.budget(rates)
        if budget.model_load > self._headroom or budget.cpu_load > self._headroom:
            raise BusyError("busy", f"server busy: one more call would not get {self._fps:g} frames a second "
                            f"({sessions} running); try again in {RETRY_AFTER_S} s")

"""Cross-session batcher: the newest driver frame of every session goes through one model call.

Frames are collected until `max_batch` sessions have one or `max_wait_ms` passed since the
first, then run through the pipeline in a worker thread (the event loop keeps serving media).
While a batch runs, newer frames overwrite older ones in the per-session slots, so under
overload frames are dropped and latency stays bounded by about one batch time.

What the event loop changes (the session's target, a calibration request) is snapshot into each
frame's job when the frame is taken, so the worker thread never reads state the loop is writing.
A batch that raises is retried one session at a time; a session whose frame still fails is handed
to `on_session_failed` (closed with a message) and the others keep their frames.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import av
import cv2

from models.pipeline import FrameJob, ReenactmentPipeline, TargetFace
from rtc import frame_tag
from server import metrics
from server.session import Session
from server.slots import DriverFrame
from server.throttled_log import ThrottledLog

log = logging.getLogger(__name__)
COST_SMOOTHING = 0.1  # weight of the newest batch in the per-frame cost average


@dataclass(frozen=True)
class BatcherConfig:
    max_batch: int = 16
    max_wait_ms: float = 4.0


@dataclass
class _Work:
    session: Session
    driver: DriverFrame
    target: TargetFace  # snapshot: a target switch applies from the next frame taken
    calibrate: bool  # snapshot of a calibration request made on the event loop


@dataclass
class _Done:
    session: Session
    frame: av.VideoFrame
    face_found: bool
    latency_s: float


@dataclass
class _Failed:
    session: Session
    error: Exception


class FrameBatcher:
    def __init__(self, pipeline: ReenactmentPipeline, config: BatcherConfig,
                 executor: concurrent.futures.Executor) -> None:
        self._pipeline = pipeline
        self._config = config
        self._executor = executor
        self._sessions: dict[str, Session] = {}
        self._wakeup = asyncio.Event()
        self._errors = ThrottledLog(log)
        self.on_session_failed: Callable[[Session, str], Awaitable[None]] | None = None
        # Health and cost, read on the event loop (health check, admission).
        self.in_flight_since: float | None = None  # time.monotonic() when the running batch started
        self.last_done: float | None = None  # time.monotonic() when the last batch finished
        self.waiting_since: float | None = None  # time.monotonic() of the oldest frame no batch has taken yet
        self.seconds_per_frame: float | None = None  # model-thread wall time per frame, smoothed over batches
        self.frames_processed = 0

    def add(self, session: Session) -> None:
        self._sessions[session.id] = session

    def remove(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def frame_arrived(self) -> None:
        if self.waiting_since is None:
            self.waiting_since = time.monotonic()
        self._wakeup.set()

    def _ready(self) -> list[Session]:
        return [s for s in self._sessions.values() if s.slot.ready and s.target is not None]

    async def run(self) -> None:
        """The batching loop; runs until cancelled (server.supervisor restarts it if it dies)."""
        self._wakeup.set()  # a restart picks up frames that arrived while it was down
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            work = await self._collect()
            if work:
                await self._run_batch(work)

    async def _collect(self) -> list[_Work]:
        ready = self._ready()
        if not ready:
            self.waiting_since = None
            return []
        deadline = time.perf_counter() + self._config.max_wait_ms / 1000
        while len(ready) < self._config.max_batch and (wait := deadline - time.perf_counter()) > 0:
            try:
                await asyncio.wait_for(self._wakeup.wait(), wait)
                self._wakeup.clear()
            except TimeoutError:
                break
            ready = self._ready()
        work = []
        for session in ready[: self._config.max_batch]:
            driver = session.slot.take()
            if driver is not None:
                work.append(_Work(session, driver, session.target.face, session.take_calibration_request()))
        if len(ready) > self._config.max_batch:
            self._wakeup.set()  # the rest go in the next batch
        else:
            self.waiting_since = None
        return work

    async def _run_batch(self, work: list[_Work]) -> None:
        loop = asyncio.get_running_loop()
        self.in_flight_since = time.monotonic()
        try:
            done, failed = await loop.run_in_executor(self._executor, self._process_or_retry, work)
        finally:
            self.in_flight_since = None
        self.last_done = time.monotonic()
        for item in done:
            item.session.deliver(item.frame, item.face_found, item.latency_s)
            metrics.FRAMES_OUT.inc()
            metrics.FRAME_LATENCY.observe(item.latency_s)
            if not item.face_found:
                metrics.FRAMES_NO_FACE.inc()
        for item in failed:
            metrics.FRAMES_DROPPED.labels(reason="error").inc()
            metrics.SESSIONS_FAILED.inc()
            self.remove(item.session)
            if self.on_session_failed is not None:
                await self.on_session_failed(item.session, "the avatar could not be generated for this call "
                                                           f"({type(item.error).__name__}); please start again")

    def _process_or_retry(self, work: list[_Work]) -> tuple[list[_Done], list[_Failed]]:
        """Runs in the worker thread. One bad session must not freeze the others: a failed batch is
        retried one session at a time."""
        start = time.perf_counter()
        try:
            done = self._process(work)
        except Exception as error:
            metrics.BATCH_FAILURES.inc()
            self._errors.exception(f"batch of {len(work)} frames failed; retrying each session alone", error)
            done, failed = [], []
            for item in work:
                try:
                    done.extend(self._process([item]))
                except Exception as single:
                    self._errors.exception(f"session {item.session.id}: its frame failed alone too", single)
                    failed.append(_Failed(item.session, single))
            return done, failed
        per_frame = (time.perf_counter() - start) / len(work)
        previous = self.seconds_per_frame
        self.seconds_per_frame = per_frame if previous is None else previous + COST_SMOOTHING * (per_frame - previous)
        self.frames_processed += len(work)
        return done, []

    def _process(self, work: list[_Work]) -> list[_Done]:
        """Runs in the worker thread: decode to RGB, model, encode-ready yuv frames."""
        start = time.perf_counter()
        rgb_frames = [w.driver.frame.to_ndarray(format="rgb24") for w in work]
        tags = [frame_tag.read_tag(rgb) if w.session.measure else None for w, rgb in zip(work, rgb_frames,
                                                                                          strict=True)]
        metrics.STAGE_SECONDS.labels(stage="decode_rgb").observe(time.perf_counter() - start)
        for w in work:
            if w.calibrate:
                self._pipeline.request_calibration(w.session.driver_state)
        jobs = [FrameJob(w.session.driver_state, w.target, rgb) for w, rgb in zip(work, rgb_frames, strict=True)]
        results = self._pipeline.process(jobs)
        metrics.BATCH_SIZE.observe(len(jobs))
        for stage, seconds in results[0].stage_seconds.items():
            metrics.STAGE_SECONDS.labels(stage=stage).observe(seconds)
        start = time.perf_counter()
        done = []
        for w, result, tag in zip(work, results, tags, strict=True):
            image = result.image
            size = w.session.size
            if image.shape[0] != size or image.shape[1] != size:
                image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
            if tag is not None:
                image = image.copy()  # the pipeline's image may be shared (a target photo, a held frame)
                frame_tag.write_tag(image, tag)
            out = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            out.pts = w.driver.frame.pts
            out.time_base = w.driver.frame.time_base
            done.append(_Done(w.session, out, result.face_found, time.perf_counter() - w.driver.arrived))
        metrics.STAGE_SECONDS.labels(stage="encode_yuv").observe(time.perf_counter() - start)
        return done

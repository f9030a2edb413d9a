"""Cross-session batcher: the newest driver frame of every session goes through one model call.

Frames are collected until `max_batch` sessions have one or `max_wait_ms` passed since the
first, then run through the pipeline in a worker thread (the event loop keeps serving media).
While a batch runs, newer frames overwrite older ones in the per-session slots, so under
overload frames are dropped and latency stays bounded by about one batch time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from dataclasses import dataclass

import av
import cv2

from models.pipeline import FrameJob, ReenactmentPipeline
from rtc import frame_tag
from server import metrics
from server.session import Session
from server.slots import DriverFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatcherConfig:
    max_batch: int = 16
    max_wait_ms: float = 4.0


@dataclass
class _Work:
    session: Session
    driver: DriverFrame


@dataclass
class _Done:
    session: Session
    frame: av.VideoFrame
    face_found: bool
    latency_s: float


class FrameBatcher:
    def __init__(self, pipeline: ReenactmentPipeline, config: BatcherConfig,
                 executor: concurrent.futures.Executor) -> None:
        self._pipeline = pipeline
        self._config = config
        self._executor = executor
        self._sessions: dict[str, Session] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None

    def add(self, session: Session) -> None:
        self._sessions[session.id] = session

    def remove(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def frame_arrived(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="frame-batcher")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _ready(self) -> list[Session]:
        return [s for s in self._sessions.values() if s.slot.ready and s.target is not None]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            ready = self._ready()
            if not ready:
                continue
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
                    work.append(_Work(session, driver))
            if len(ready) > self._config.max_batch:
                self._wakeup.set()  # the rest go in the next batch
            if not work:
                continue
            try:
                done = await loop.run_in_executor(self._executor, self._process, work)
            except Exception:  # a model bug must not kill the batcher: log, drop the batch, go on
                log.exception("batch of %d frames failed", len(work))
                metrics.FRAMES_DROPPED.labels(reason="error").inc(len(work))
                continue
            for item in done:
                item.session.deliver(item.frame, item.face_found, item.latency_s)
                metrics.FRAMES_OUT.inc()
                metrics.FRAME_LATENCY.observe(item.latency_s)
                if not item.face_found:
                    metrics.FRAMES_NO_FACE.inc()

    def _process(self, work: list[_Work]) -> list[_Done]:
        """Runs in the worker thread: decode to RGB, model, encode-ready yuv frames."""
        start = time.perf_counter()
        rgb_frames = [w.driver.frame.to_ndarray(format="rgb24") for w in work]
        tags = [frame_tag.read_tag(rgb) if w.session.measure else None for w, rgb in zip(work, rgb_frames,
                                                                                          strict=True)]
        metrics.STAGE_SECONDS.labels(stage="decode_rgb").observe(time.perf_counter() - start)
        jobs = [FrameJob(w.session.driver_state, w.session.target.face, rgb)
                for w, rgb in zip(work, rgb_frames, strict=True)]
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

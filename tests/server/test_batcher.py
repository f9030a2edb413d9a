"""The cross-session batcher under overload: stale frames are dropped, latency stays bounded."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import time

import av
import numpy as np
from aiortc import RTCPeerConnection

from models.pipeline import DriverState, FrameJob, FrameResult, TargetFace
from server.batcher import BatcherConfig, FrameBatcher
from server.session import PreparedTarget, Session

MODEL_SECONDS = 0.05


class SlowPipeline:
    """Stands in for a model that needs 50 ms per batch, whatever its size (as a GPU roughly does)."""

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def process(self, jobs: list[FrameJob]) -> list[FrameResult]:
        time.sleep(MODEL_SECONDS)
        self.batch_sizes.append(len(jobs))
        return [FrameResult(np.full((64, 64, 3), job.frame[0, 0, 0], np.uint8), True, {"generate": MODEL_SECONDS})
                for job in jobs]


def _frame(value: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), value, np.uint8), format="rgb24")
    frame.pts, frame.time_base = value, fractions.Fraction(1, 90000)
    return frame


async def _overload(sessions_count: int, seconds: float, fps: float) -> tuple[list[Session], SlowPipeline, list]:
    pipeline = SlowPipeline()
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    batcher = FrameBatcher(pipeline, BatcherConfig(max_batch=8, max_wait_ms=2), executor)  # type: ignore[arg-type]
    target = PreparedTarget("t", TargetFace([np.zeros((64, 64, 3), np.uint8)], [np.zeros((68, 2), np.float32)]))
    sessions = [Session(RTCPeerConnection(), target, DriverState(), 64, False) for _ in range(sessions_count)]
    for session in sessions:
        batcher.add(session)
    runner = asyncio.create_task(batcher.run())
    latencies = []

    async def drain(session: Session) -> None:
        while True:
            await session.avatar_track.recv()

    drains = [asyncio.create_task(drain(s)) for s in sessions]
    start = time.perf_counter()
    index = 0
    while time.perf_counter() - start < seconds:
        for session in sessions:
            if session.slot.put(_frame(index % 250)):
                session.frames_dropped += 1
            session.frames_in += 1
        batcher.frame_arrived()
        index += 1
        await asyncio.sleep(1 / fps)
    await asyncio.sleep(0.2)
    for session in sessions:
        latencies.extend(session._latencies)
    for task in drains:
        task.cancel()
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    for session in sessions:
        await session.pc.close()
    executor.shutdown()
    return sessions, pipeline, latencies


def test_overload_drops_frames_and_keeps_latency_flat() -> None:
    # 3 sessions at 60 fps into a model that manages 20 batches/s: most frames must be dropped.
    sessions, pipeline, latencies = asyncio.run(_overload(3, seconds=1.5, fps=60))
    for session in sessions:
        assert session.frames_dropped > session.frames_in * 0.4
        assert session.frames_out + session.frames_dropped <= session.frames_in
    # Frames of all sessions share a model call instead of queueing one after another.
    assert max(pipeline.batch_sizes) == 3
    # Latency is bounded by about one model call plus the wait for the running one, never growing.
    assert max(latencies) < 3 * MODEL_SECONDS + 0.05
    late = latencies[len(latencies) // 2:]
    assert np.mean(late) < 2.5 * MODEL_SECONDS


class FailingPipeline(SlowPipeline):
    """Raises whenever a frame for `bad` is in the batch (e.g. a target that makes the generator raise)."""

    def __init__(self, bad: TargetFace) -> None:
        super().__init__()
        self.bad = bad

    def process(self, jobs: list[FrameJob]) -> list[FrameResult]:
        if any(job.target is self.bad for job in jobs):
            raise ValueError("this target breaks the generator")
        return super().process(jobs)

    def request_calibration(self, driver: DriverState) -> None:
        driver.calibrate_next = True


def test_one_failing_session_is_closed_and_the_others_keep_their_frames() -> None:
    async def scenario() -> tuple[list[int], list[tuple[str, str]]]:
        good = PreparedTarget("good", TargetFace([np.zeros((64, 64, 3), np.uint8)], [np.zeros((68, 2), np.float32)]))
        bad = PreparedTarget("bad", TargetFace([np.zeros((64, 64, 3), np.uint8)], [np.zeros((68, 2), np.float32)]))
        pipeline = FailingPipeline(bad.face)
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        batcher = FrameBatcher(pipeline, BatcherConfig(max_batch=8, max_wait_ms=5), executor)  # type: ignore[arg-type]
        sessions = [Session(RTCPeerConnection(), target, DriverState(), 64, False) for target in (good, bad, good)]
        closed: list[tuple[str, str]] = []

        async def on_failed(session: Session, message: str) -> None:
            closed.append((session.target.id, message))

        batcher.on_session_failed = on_failed
        for session in sessions:
            batcher.add(session)
        runner = asyncio.create_task(batcher.run())
        for index in range(10):
            for session in sessions:
                session.slot.put(_frame(index))
            batcher.frame_arrived()
            await asyncio.sleep(0.08)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        for session in sessions:
            await session.pc.close()
        executor.shutdown()
        return [s.frames_out for s in sessions], closed

    frames_out, closed = asyncio.run(scenario())
    assert frames_out[0] >= 8 and frames_out[2] >= 8 and frames_out[1] == 0
    assert len(closed) == 1 and closed[0][0] == "bad" and "please start again" in closed[0][1]

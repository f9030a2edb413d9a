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

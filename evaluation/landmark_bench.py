"""Benchmark (not a test): the landmark stage per sub-stage, our runtimes (and optionally MediaPipe) side by side.

    python -m evaluation.landmark_bench [--runtimes litert,torch,onnx] [--batch 1] [--frames 200] [--repeats 2]
        [--eyes-every 1] [--mediapipe-python /work/wt/mp-venv/bin/python] [--json out/perf/landmarks.json]

Every runtime tracks the talking-face clip with its own `MeshLandmarkStage` (batch B = B streams, each its own
driver, as evaluation.pipeline_bench), and they take turns frame by frame, so a loaded machine slows all alike.
Timers wrap the engine's calls, its networks and crops from outside (nothing is timed in production code): wall
and process-CPU ms per face of loading the frame, detection, the mesh crop and network, the eye crops and network,
the tracker's own work (ROIs, write-back, 468 -> 68) and the pipeline's One Euro smoothing. Means add up to the
total (detection, every `detect_every` frames, amortised); medians of the total are given too.

With `--mediapipe-python`, the same frames also go, interleaved, to MediaPipe's own FaceMesh (detection + tracking
+ refined lids and irises) in a separate process running that interpreter (a virtual environment of its own:
mediapipe 0.10.21 pins numpy<2), and the report gives ours / MediaPipe per runtime.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

import numpy as np

from evaluation.machine_info import emit_report, machine_info
from evaluation.mediapipe_side import MediaPipeTracker
from evaluation.motion import read_clip
from models.assets import sample_media
from models.facemesh import litert_engine, torch_engine
from models.facemesh.networks import MESH_SIZE, RUNTIMES, RuntimeConfig
from models.facemesh.tracker import MeshLandmarkStage, MeshTrackerConfig, MeshTrackState
from models.landmarks import face_size
from models.smoothing import OneEuroFilter

CLIP = "WolfgangLanger_Pexels.mp4"
WARM_UP_CALLS = 10
PARTS = ("load", "detect", "detect.network", "mesh", "mesh.crop", "mesh.network", "eyes", "eyes.crop",
         "eyes.network", "tracker", "smoothing", "total")
ENGINE_CALLS = ("load", "detect", "mesh", "eyes")


class Clock:
    """Wall and process-CPU seconds per named part, summed over the calls of one measurement."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += time.perf_counter() - wall
            self.cpu[name] += time.process_time() - cpu

    def wrap(self, name: str | Callable[..., str], function: Callable) -> Callable:
        def timed(*args, **kwargs):
            with self.part(name if isinstance(name, str) else name(*args, **kwargs)):
                return function(*args, **kwargs)

        return timed


def _crop_part(side_position: int) -> Callable[..., str]:
    """The part a crop call belongs to, from its side argument (192: the mesh, 64: an eye)."""
    def name(*args, **kwargs) -> str:
        side = args[side_position] if len(args) > side_position else kwargs.get("side", MESH_SIZE)
        return "mesh.crop" if side == MESH_SIZE else "eyes.crop"

    return name


@contextmanager
def instrumented_crops(clock: Clock) -> Iterator[None]:
    """Both engines' crop functions timed while the benchmark runs (module-level, so patched there)."""
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(litert_engine, "cut", clock.wrap(_crop_part(4), litert_engine.cut)))
        stack.enter_context(mock.patch.object(torch_engine, "crop", clock.wrap(_crop_part(3), torch_engine.crop)))
        yield


def instrument(stage: MeshLandmarkStage, clock: Clock) -> None:
    """Timers around one stage's engine calls and networks (instance attributes, so only this stage's)."""
    engine = stage.engine
    for call in ENGINE_CALLS:
        setattr(engine, call, clock.wrap(call, getattr(engine, call)))
    detector_owner, detector_slot = ((engine.detector, "runner") if isinstance(engine, torch_engine.TorchEngine)
                                     else (engine, "detector_net"))
    for owner, slot, name in ((detector_owner, detector_slot, "detect.network"), (engine, "mesh_net", "mesh.network"),
                              (engine, "eye_net", "eyes.network")):
        if getattr(owner, slot) is not None:
            setattr(owner, slot, clock.wrap(name, getattr(owner, slot)))


class Contender:
    """One of our runtimes tracking B streams, with the pipeline's smoothing after it."""

    def __init__(self, runtime: str, batch: int, clock: Clock, eyes_every: int = 1) -> None:
        self.runtime, self.batch, self.clock = runtime, batch, clock
        self.stage = MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig(runtime=runtime), eyes_every=eyes_every))
        instrument(self.stage, clock)
        self.restart()
        self.rows: list[tuple[dict[str, float], dict[str, float]]] = []

    def restart(self) -> None:
        self.states = [MeshTrackState() for _ in range(self.batch)]
        self.smoothers = [(OneEuroFilter(), OneEuroFilter()) for _ in range(self.batch)]

    def step(self, frames: list[np.ndarray], timestamp: float, keep: bool) -> None:
        self.clock.reset()
        with self.clock.part("total"):
            with self.clock.part("track"):
                found = self.stage.track(frames, self.states)
            with self.clock.part("smoothing"):  # as ReenactmentPipeline._drive: the 68 points and the mesh
                for points, state, (points_filter, mesh_filter) in zip(found, self.states, self.smoothers,
                                                                       strict=True):
                    if points is not None:
                        scale = face_size(points)
                        points_filter(points, timestamp, scale=scale)
                        mesh_filter(state.mesh, timestamp, scale=scale)
        if keep:
            self.rows.append((dict(self.clock.wall), dict(self.clock.cpu)))

    def report(self) -> dict:
        def per_face(kind: int, part: str) -> np.ndarray:
            values = []
            for row in self.rows:
                times = row[kind]
                if part == "tracker":  # what track() spent outside the engine: ROIs, eye write-back, 468 -> 68
                    value = times.get("track", 0.0) - sum(times.get(call, 0.0) for call in ENGINE_CALLS)
                else:
                    value = times.get(part, 0.0)
                values.append(1000 * value / self.batch)
            return np.array(values)

        parts = {}
        for part in PARTS:
            wall, cpu = per_face(0, part), per_face(1, part)
            parts[part] = {"cpu_mean": round(float(cpu.mean()), 3), "wall_mean": round(float(wall.mean()), 3)}
        total_wall, total_cpu = per_face(0, "total"), per_face(1, "total")
        parts["total"].update(cpu_median=round(float(np.median(total_cpu)), 3),
                              wall_median=round(float(np.median(total_wall)), 3),
                              cpu_p90=round(float(np.percentile(total_cpu, 90)), 3))
        return {"calls": len(self.rows), "ms_per_face": parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.landmark_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtimes", default="litert,torch,onnx", help="comma-separated, from: " + ",".join(RUNTIMES))
    parser.add_argument("--batch", type=int, default=1, help="streams per call (default: 1)")
    parser.add_argument("--frames", type=int, default=200, help="clip frames per repeat (default: 200)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the frames, each from fresh streams")
    parser.add_argument("--mediapipe-python", type=Path, default=None,
                        help="a Python with mediapipe 0.10.21 installed: run MediaPipe's FaceMesh side by side")
    parser.add_argument("--eyes-every", type=int, default=1,
                        help="our stages run the eye network every N-th frame (default: 1, every frame)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    runtimes = [name.strip() for name in args.runtimes.split(",") if name.strip()]
    if (not runtimes or set(runtimes) - set(RUNTIMES) or args.batch < 1 or args.frames <= WARM_UP_CALLS
            or args.eyes_every < 1):
        parser.error(f"--runtimes from {','.join(RUNTIMES)}, --batch >= 1, --frames > {WARM_UP_CALLS}, "
                     "--eyes-every >= 1")
    frames = read_clip(sample_media(CLIP), args.frames)
    machine = machine_info()
    clock = Clock()
    with instrumented_crops(clock), ExitStack() as stack:
        contenders = [Contender(runtime, args.batch, clock, args.eyes_every) for runtime in runtimes]
        mediapipe = (stack.enter_context(MediaPipeTracker(args.mediapipe_python, frames[0].shape))
                     if args.mediapipe_python else None)
        for _ in range(args.repeats):
            for contender in contenders:
                contender.restart()
            if mediapipe is not None:
                mediapipe.restart()
            for index in range(len(frames)):
                chosen = [frames[(index + 7 * stream) % len(frames)] for stream in range(args.batch)]
                keep = index >= WARM_UP_CALLS
                for contender in contenders:
                    contender.step(chosen, index / 30, keep)
                if mediapipe is not None:
                    mediapipe.step(chosen[0], keep)
    ours = {contender.runtime: contender.report() for contender in contenders}
    report = {"benchmark": "landmark stage: detection + mesh + eyes, per face", "clip": CLIP,
              "frame_size": list(frames[0].shape[:2]), "batch": args.batch, "eyes_every": args.eyes_every,
              "frames": len(frames),
              "repeats": args.repeats, "machine": machine, "load_average_after": machine_info()["load_average"],
              "ours": ours}
    if mediapipe is not None:
        theirs = mediapipe.report()
        report["mediapipe"] = theirs
        report["ours_over_mediapipe_cpu_mean"] = {
            runtime: round(result["ms_per_face"]["total"]["cpu_mean"] / theirs["ms_per_frame"]["cpu_mean"], 2)
            for runtime, result in ours.items()}
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

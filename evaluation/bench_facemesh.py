"""Benchmark (not a test): frames/s of the neural landmark stage per batch size and runtime.

- mesh: FaceMesh alone on (B, 3, 192, 192) real face crops.
- track: `MeshLandmarkStage.track` on B streams of a real 640x360 video in steady state (each stream tracked
  from its previous frame, BlazeFace every `detect_every` frames): crop + mesh + mapping, detection amortised.
- detect+track: the same with every stream new on every call, so BlazeFace runs on all B frames each time.
- eyes: the eye refinement alone (`refine_eyes`): both eyes of B tracked faces cut in one crop call, the eye
  network on the 2B crops, points written back into the meshes. Its cost per frame is what refinement adds.

CPU always (LiteRT on the .tflite files, torch and onnxruntime); on CUDA also torch fp32, torch fp16 and
onnxruntime's CUDA provider.

    python -m evaluation.bench_facemesh --json out/facemesh_bench.json
    python -m evaluation.bench_facemesh --batches 1 4 --seconds 1    # quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from evaluation.facemesh_reference import CropTransform, decode, dlib_face
from evaluation.machine_info import emit_report, machine_info
from models.facemesh.detection import DetectionConfig
from models.facemesh.engines import landmark_engine
from models.facemesh.eyes import eye_rois, refine_mesh
from models.facemesh.litert_engine import TfliteNetwork
from models.facemesh.networks import EYE_POINTS, MESH_FILE, RUNTIMES, RuntimeConfig, as_pixels, mesh_runner
from models.facemesh.tracker import MeshLandmarkStage, MeshTrackerConfig, MeshTrackState

CLIP = "WolfgangLanger_Pexels.mp4"
MODES = ("mesh", "track", "detect+track", "eyes")


@dataclass(frozen=True)
class Result:
    mode: str
    runtime: str
    device: str
    half: bool
    batch: int
    calls: int
    ms_per_batch: float  # median call: robust to other processes taking the CPU for a while
    ms_per_batch_mean: float
    frames_per_s: float  # batch / median call


def configs(device: str) -> list[RuntimeConfig]:
    out = [RuntimeConfig("litert", "cpu"), RuntimeConfig("torch", "cpu"), RuntimeConfig("onnx", "cpu")]
    if device.startswith("cuda"):
        out += [RuntimeConfig("torch", device), RuntimeConfig("torch", device, half=True),
                RuntimeConfig("onnx", device)]
    return out


def timed(step: Callable[[], object], seconds: float, synchronise: bool) -> list[float]:
    """Seconds of each call: two warm-up calls, then repeats until `seconds` have passed (at least 5)."""
    step()
    step()
    times: list[float] = []
    while len(times) < 5 or sum(times) < seconds:
        start = time.perf_counter()
        step()
        if synchronise:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def mesh_step(config: RuntimeConfig, crops: list[np.ndarray], batch: int) -> Callable[[], object]:
    if config.runtime == "litert":  # one crop a call: LiteRT runs one sample at a time
        network = TfliteNetwork(MESH_FILE, config.cpu_threads)
        inputs = [crops[i % len(crops)] for i in range(batch)]
        return lambda: [network([pixels], 1 / 255) for pixels in inputs]
    runner = mesh_runner(config)
    pixels = as_pixels([crops[i % len(crops)] for i in range(batch)]).to(config.device)
    return lambda: runner(pixels)


def eyes_step(config: RuntimeConfig, frames: list[np.ndarray], batch: int) -> Callable[[], object]:
    """Refinement of B faces (meshes from a plain tracking run) in B different frames."""
    stage = MeshLandmarkStage(MeshTrackerConfig(runtime=config, refine_eyes=False))
    state, chosen, meshes = MeshTrackState(), [], []
    for frame in frames[:batch]:
        if stage.track([frame], [state])[0] is not None:
            chosen.append(frame)
            meshes.append(state.mesh)
    engine = landmark_engine(config, DetectionConfig(), refine_eyes=True)
    points = np.stack(meshes)

    def step() -> object:
        loaded = engine.load(chosen)
        rois, mirrored = eye_rois(points)
        eyes = engine.eyes(loaded, [i for i in range(len(chosen)) for _ in range(2)], rois, mirrored)
        return refine_mesh(points, eyes.reshape(len(chosen), 2, -1, 3)[:, :, :EYE_POINTS])

    return step


def track_step(stage: MeshLandmarkStage, frames: list[np.ndarray], batch: int, fresh: bool) -> Callable[[], object]:
    """Each call advances B streams by one frame (streams start at different points of the clip)."""
    states = [MeshTrackState() for _ in range(batch)]
    clock = [0]

    def step() -> object:
        nonlocal states
        if fresh:
            states = [MeshTrackState() for _ in range(batch)]
        clock[0] += 1
        chosen = [frames[(clock[0] + 7 * stream) % len(frames)] for stream in range(batch)]
        return stage.track(chosen, states)

    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.bench_facemesh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4, 16, 64])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent per measurement after warm-up")
    parser.add_argument("--frames", type=int, default=64, help="video frames the streams cycle through")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is steadier on a shared machine")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    frames = list(decode(CLIP, limit=args.frames))
    crops = []
    for frame in frames[:8]:
        face = dlib_face(frame)
        if face is not None:
            crops.append(CropTransform.around(face[0]).cut(frame))
    results = []
    for config in (c for c in configs(args.device) if c.runtime in args.runtimes):
        stage = MeshLandmarkStage(MeshTrackerConfig(runtime=config))
        for mode in args.modes:
            for batch in args.batches:
                if mode == "mesh":
                    step = mesh_step(config, crops, batch)
                elif mode == "eyes":
                    step = eyes_step(config, frames, batch)
                else:
                    step = track_step(stage, frames, batch, fresh=mode == "detect+track")
                times = timed(step, args.seconds, config.device.startswith("cuda"))
                median = float(np.median(times))
                results.append(Result(mode, config.runtime, config.device, config.half, batch, len(times),
                                      round(1000 * median, 2), round(1000 * float(np.mean(times)), 2),
                                      round(batch / median, 1)))
                print(json.dumps(asdict(results[-1])), file=sys.stderr)
    report = {"benchmark": "facemesh landmarks", "clip": CLIP, "frame_size": list(frames[0].shape[:2]),
              "torch_threads": torch.get_num_threads(), "seconds_per_measurement": args.seconds,
              "machine": machine_info(), "results": [asdict(r) for r in results]}
    emit_report(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

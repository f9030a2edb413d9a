"""The live pipeline's options, one section per stage.

Each field here is the single declaration of an option: its type, default and help become the command-line
flag (`python -m server`, `models.reenact`, `evaluation.evaluate`), the server's MARIONETTE_<FIELD> variable,
the checks, and the server's /api/info entry. `PipelineConfig` (models.pipeline) is all sections together;
each stage is handed its own section (`options.section`). A new generator option is one field in
`GeneratorSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from models.marionette.config import CONFIGS
from options import OptionError, Options, option

Device = Literal["auto", "cpu", "cuda"]
ModelRuntime = Literal["torch", "onnx"]
LandmarkRuntime = Literal["auto", "litert", "torch", "onnx"]
LandmarkSource = Literal["mesh", "dlib"]
TransformerName = Literal["v0", "pca", "regressor"]
MouthInterior = Literal["painted", "caller"]
LANDMARK_SOURCES: tuple[str, ...] = get_args(LandmarkSource)
LANDMARK_RUNTIMES: tuple[str, ...] = get_args(LandmarkRuntime)
TRANSFORMERS: tuple[str, ...] = get_args(TransformerName)
MIN_SIZE, MAX_SIZE = 64, 1024  # avatar sizes, in pixels


@dataclass(frozen=True, kw_only=True)
class RunSettings(Options):
    """What every stage needs to know."""

    output_size: int = option(256, "avatar size in pixels (square; a server session may ask for another)",
                              low=MIN_SIZE, high=MAX_SIZE, even=True, aliases=("--size",))
    device: Device = option("cpu", "where the models run: auto picks cuda when available")


@dataclass(frozen=True, kw_only=True)
class GeneratorSettings(RunSettings):
    """What a generator is built with (models.generators)."""

    weights: Path | None = option(None, "trained weights file for --generator marionette; none: untrained weights",
                                  existing=True)
    network: str = option("lite", "network config for --generator marionette", choices=tuple(CONFIGS))
    runtime: ModelRuntime = option("torch", "inference runtime for --generator marionette (onnx = onnxruntime)")
    few_shot_texture: bool = option(False, "--generator mesh with several target photos: face triangles the first "
                                    "photo shows foreshortened take their texture from the photo that sees them "
                                    "best (off: measured no better than one photo, see docs/mesh_generator.md)")
    mouth_interior: MouthInterior = option(
        "painted", "--generator mesh: an open mouth's inside: painted (a shaded cavity with teeth in the target's "
        "colours) or caller (the caller's own mouth inside, cut from their frame, in the target's lighting)")


@dataclass(frozen=True, kw_only=True)
class LandmarkSettings(RunSettings):
    """The driver landmark stage."""

    landmarks: LandmarkSource = option(
        "mesh", "driver landmarks: mesh (BlazeFace + FaceMesh, one batched call for all sessions; GPU when "
        "--device is cuda) or dlib (HOG + shape predictor per session, CPU only)")
    landmark_runtime: LandmarkRuntime = option(
        "auto", "inference runtime for --landmarks mesh: litert (MediaPipe's .tflite files on LiteRT/XNNPACK, one "
        "face at a time, CPU only), torch (the batched port, CPU or GPU) or onnx (onnxruntime); auto: litert on the "
        "CPU (the fastest measured there, docs/performance.md), torch on cuda")
    detect_every: int = option(10, "run full face detection every N frames, track in between", low=1)
    refine_eyes: bool = option(True, "--landmarks mesh: eyelids and irises from MediaPipe's eye network")
    eyes_every: int = option(1, "--refine-eyes: run the eye network on each caller every N-th frame (in between "
                             "the last lid correction is kept)", low=1, high=4)

    def rules(self) -> None:
        if self.landmark_runtime == "litert" and self.device == "cuda":
            raise OptionError("landmark_runtime", "litert runs on the CPU only: with --device cuda use torch (or auto)")


@dataclass(frozen=True, kw_only=True)
class TransformerSettings(RunSettings):
    """The landmark transformer (driver motion onto the target's landmarks)."""

    transformer: TransformerName = option(
        "v0", "landmark transformer: v0 (geometric), pca or regressor (need --expression-model)")
    expression_model: Path | None = option(
        None, "expression model .npz from python -m training.fit_landmarks", existing=True)

    def rules(self) -> None:
        if self.transformer != "v0" and self.expression_model is None:
            raise OptionError("transformer", f"{self.transformer} needs --expression-model (the {self.transformer} "
                                             "landmark transformer needs an expression model .npz)")


def resolve_landmark_runtime(requested: str, device: str) -> str:
    """The runtime `requested` means on `device` (a resolved device: cpu or cuda)."""
    if requested != "auto":
        return requested
    return "litert" if device == "cpu" else "torch"


def resolve_device(requested: str) -> str:
    """The device `requested` means on this machine ("auto": cuda when torch sees one, else cpu)."""
    if requested != "auto":
        return requested
    try:
        import torch  # optional: only the neural stages need it
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"

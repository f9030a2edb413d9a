"""Inference runtimes for the MarioNETte generator behind one interface: torch (CPU/CUDA, fp16 on CUDA)
and onnxruntime (from an ONNX export with dynamic batch and shot axes)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from models.marionette.config import CONFIGS, MarioNETteConfig
from models.marionette.network import MarioNETteGenerator

log = logging.getLogger(__name__)


class Runtime(Protocol):
    config: MarioNETteConfig

    def encode_targets(self, images: np.ndarray, landmark_images: np.ndarray) -> list[np.ndarray]:
        """(N, K, 3, H, W) float32 in -1..1 -> per-level (N, K, C, h, w) features."""

    def decode(self, driver_landmark_images: np.ndarray, target_features: list[np.ndarray]) -> np.ndarray:
        """(N, 3, H, W) float32 in -1..1 + features -> (N, 3, H, W) float32 in -1..1."""


def load_generator(network: str, weights: Path | None) -> MarioNETteGenerator:
    """A generator with trained weights, or freshly initialised ones (seeded) when `weights` is None."""
    if weights is None:
        torch.manual_seed(0)
        log.warning("marionette: no --weights given, using untrained (random) weights")
        return MarioNETteGenerator(CONFIGS[network]).eval()
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    name = checkpoint.get("config", network)
    if name not in CONFIGS:
        raise ValueError(f"{weights}: unknown network config {name!r}")
    config = CONFIGS[name]
    if checkpoint.get("image_size"):  # trained at another resolution than the config's default
        config = dataclasses.replace(config, image_size=int(checkpoint["image_size"]))
    model = MarioNETteGenerator(config)
    model.load_state_dict(checkpoint["generator"])
    return model.eval()


def save_generator(model: MarioNETteGenerator, path: Path, **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": model.config.name, "generator": model.state_dict(), **extra}, path)


@dataclass
class TorchRuntime:
    model: MarioNETteGenerator
    device: str = "cpu"
    half: bool = False  # fp16 on CUDA

    def __post_init__(self) -> None:
        self.config = self.model.config
        self.dtype = torch.float16 if self.half and self.device.startswith("cuda") else torch.float32
        self.model = self.model.to(self.device, self.dtype).eval()

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device, self.dtype)

    @torch.inference_mode()
    def encode_targets(self, images: np.ndarray, landmark_images: np.ndarray) -> list[np.ndarray]:
        features = self.model.encode_targets(self._tensor(images), self._tensor(landmark_images))
        return [f.float().cpu().numpy() for f in features]

    @torch.inference_mode()
    def decode(self, driver_landmark_images: np.ndarray, target_features: list[np.ndarray]) -> np.ndarray:
        out = self.model.decode(self._tensor(driver_landmark_images), [self._tensor(f) for f in target_features])
        return out.float().cpu().numpy()


class _DecodeGraph(torch.nn.Module):
    def __init__(self, model: MarioNETteGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(self, driver_landmark_image: torch.Tensor, *target_features: torch.Tensor) -> torch.Tensor:
        return self.model.decode(driver_landmark_image, list(target_features))


class _TargetGraph(torch.nn.Module):
    def __init__(self, model: MarioNETteGenerator) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, landmark_images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.model.encode_targets(images, landmark_images))


def export_onnx(model: MarioNETteGenerator, out_dir: Path) -> tuple[Path, Path]:
    """Two graphs: target encoder (once per target) and decode (per frame), with dynamic batch (N) and
    shot (K) axes; the decode graph takes the target-side cache as inputs."""
    out_dir.mkdir(parents=True, exist_ok=True)
    config = model.config
    size = config.image_size
    model = model.float().cpu().eval()
    images = torch.zeros(2, 1, 3, size, size)
    with torch.no_grad():
        features = model.encode_targets(images, images)
    levels = len(features)
    feature_names = [f"target_features_{i + 1}" for i in range(levels)]
    target_path = out_dir / f"marionette_{config.name}_target.onnx"
    decode_path = out_dir / f"marionette_{config.name}_decode.onnx"
    batch_axes = {0: "batch", 1: "shots"}
    torch.onnx.export(
        _TargetGraph(model), (images, images), target_path, input_names=["images", "landmark_images"],
        output_names=feature_names, opset_version=18, dynamo=False,
        dynamic_axes={"images": batch_axes, "landmark_images": batch_axes, **dict.fromkeys(feature_names, batch_axes)},
    )
    driver = torch.zeros(2, 3, size, size)
    torch.onnx.export(
        _DecodeGraph(model), (driver, *features), decode_path,
        input_names=["driver_landmark_image", *feature_names], output_names=["image"], opset_version=18,
        dynamo=False,
        dynamic_axes={"driver_landmark_image": {0: "batch"}, "image": {0: "batch"},
                      **dict.fromkeys(feature_names, batch_axes)},
    )
    return target_path, decode_path


class OnnxRuntime:
    def __init__(self, config: MarioNETteConfig, target_path: Path, decode_path: Path,
                 providers: list[str] | None = None) -> None:
        import onnxruntime

        self.config = config
        available = onnxruntime.get_available_providers()
        wanted = providers or ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
        chosen = [p for p in wanted if p in available] or ["CPUExecutionProvider"]
        self._target = onnxruntime.InferenceSession(str(target_path), providers=chosen)
        self._decode = onnxruntime.InferenceSession(str(decode_path), providers=chosen)
        self._feature_names = [i.name for i in self._decode.get_inputs()][1:]

    def encode_targets(self, images: np.ndarray, landmark_images: np.ndarray) -> list[np.ndarray]:
        return self._target.run(None, {"images": images.astype(np.float32),
                                       "landmark_images": landmark_images.astype(np.float32)})

    def decode(self, driver_landmark_images: np.ndarray, target_features: list[np.ndarray]) -> np.ndarray:
        feeds = {"driver_landmark_image": driver_landmark_images.astype(np.float32)}
        feeds.update(zip(self._feature_names, target_features, strict=True))
        return self._decode.run(None, feeds)[0]

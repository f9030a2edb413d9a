"""The MarioNETte network behind the generator interface: target side cached, driver side batched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch

from models.assets import CACHE_DIR
from models.generators.base import GenerateRequest, Generator, GeneratorSettings
from models.marionette.rasterize import landmark_image
from models.marionette.runtime import OnnxRuntime, Runtime, TorchRuntime, export_onnx, load_generator


def _onnx_dir(settings: GeneratorSettings) -> Path:
    """Exports are cached per weights file content (or per network for untrained weights)."""
    key = settings.network
    if settings.weights:
        key = hashlib.sha256(Path(settings.weights).read_bytes()).hexdigest()[:16]
    return CACHE_DIR / "onnx" / key


def build_runtime(settings: GeneratorSettings) -> Runtime:
    weights = Path(settings.weights) if settings.weights else None
    if weights is not None and not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    model = load_generator(settings.network, weights)
    if settings.runtime == "torch":
        return TorchRuntime(model, settings.device, half=settings.device.startswith("cuda"))
    if settings.runtime == "onnx":
        directory = _onnx_dir(settings)
        target_path = directory / f"marionette_{model.config.name}_target.onnx"
        decode_path = directory / f"marionette_{model.config.name}_decode.onnx"
        if not (target_path.exists() and decode_path.exists()):
            export_onnx(model, directory)
        return OnnxRuntime(model.config, target_path, decode_path)
    raise ValueError(f"unknown runtime {settings.runtime!r} (torch or onnx)")


def _to_network(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] != size:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1


def _landmark_images(points: np.ndarray, size: int) -> np.ndarray:
    return landmark_image(torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32)), size).numpy()


class MarioNETteGenerator(Generator):
    def __init__(self, settings: GeneratorSettings) -> None:
        super().__init__(settings)
        self.runtime = build_runtime(settings)
        self.size = self.runtime.config.image_size
        self.scale = self.size / self.output_size  # landmarks come in output pixels

    def prepare(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> dict:
        stacked = np.stack([_to_network(image, self.size) for image in images])[None]
        marks = _landmark_images(np.stack(landmarks) * self.scale, self.size)[None]
        return {"features": self.runtime.encode_targets(stacked, marks)}

    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        outputs: list[np.ndarray | None] = [None] * len(requests)
        by_shots: dict[int, list[int]] = {}
        for index, request in enumerate(requests):  # one model call per number of target photos
            by_shots.setdefault(len(request.images), []).append(index)
        for indices in by_shots.values():
            driven = np.stack([requests[i].driven for i in indices]) * self.scale
            features = [np.concatenate([requests[i].cache["features"][level] for i in indices])
                        for level in range(len(requests[indices[0]].cache["features"]))]
            images = self.runtime.decode(_landmark_images(driven, self.size), features)
            for i, image in zip(indices, images, strict=True):
                rgb = np.clip((image.transpose(1, 2, 0) + 1) * 127.5, 0, 255).astype(np.uint8)
                if rgb.shape[0] != self.output_size:
                    rgb = cv2.resize(rgb, (self.output_size, self.output_size), interpolation=cv2.INTER_LINEAR)
                outputs[i] = rgb
        return [o for o in outputs if o is not None]

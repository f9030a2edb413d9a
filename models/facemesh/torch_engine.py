"""The torch landmark engine: the torch port (or its ONNX export) on every face of a batch at once, on any device.

Frames go to the device once per batch; crops are cut there with grid_sample, all faces in one call, all eyes in
one more; only points come back.
"""

from __future__ import annotations

import numpy as np
import torch

from models.facemesh.detection import DetectionConfig, FaceDetector
from models.facemesh.engines import FaceCandidates
from models.facemesh.face_rois import FaceRois
from models.facemesh.networks import EYE_SIZE, RuntimeConfig, detector_runner, eye_runner, mesh_runner
from models.facemesh.roi import Roi, crop, to_frame


class TorchEngine:
    def __init__(self, runtime: RuntimeConfig, detection: DetectionConfig, refine_eyes: bool) -> None:
        self.device = torch.device(runtime.device)
        self.detector = FaceDetector(detector_runner(runtime), detection)
        self.mesh_net = mesh_runner(runtime)
        self.eye_net = eye_runner(runtime) if refine_eyes else None

    def load(self, frames: list[np.ndarray]) -> list[torch.Tensor]:
        return [torch.from_numpy(frame).to(self.device).permute(2, 0, 1) for frame in frames]

    def detect(self, frames: list[torch.Tensor], which: list[int]) -> FaceCandidates:
        found = self.detector([frames[i] for i in which])
        return FaceCandidates(found.boxes.cpu().numpy(), found.keypoints.cpu().numpy(), found.valid.cpu().numpy())

    def mesh(self, frames: list[torch.Tensor], frame_index: list[int],
             rois: FaceRois) -> tuple[np.ndarray, np.ndarray]:
        roi = Roi.from_numpy(rois, self.device)
        points, logits = self.mesh_net(crop(frames, frame_index, roi))
        return to_frame(points.to(self.device), roi).cpu().numpy(), logits.cpu().numpy()

    def eyes(self, frames: list[torch.Tensor], frame_index: list[int], rois: FaceRois,
             mirrored: list[bool]) -> np.ndarray:
        if self.eye_net is None:
            raise RuntimeError("this engine was built without the eye network (refine_eyes off)")
        roi = Roi.from_numpy(rois, self.device)
        flip = torch.tensor(mirrored, device=self.device)
        pixels = crop(frames, frame_index, roi, EYE_SIZE)
        pixels[flip] = pixels[flip].flip(-1)  # mirrored into the right eye's orientation, the one it was trained on
        contours, iris = self.eye_net(pixels)
        points = torch.cat([contours, iris], dim=1).to(self.device)
        points[flip, :, 0] = EYE_SIZE - points[flip, :, 0]  # crop coordinates run 0..64 across: u -> 64 - u
        return to_frame(points, roi, EYE_SIZE).cpu().numpy()

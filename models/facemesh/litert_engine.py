"""The LiteRT landmark engine: MediaPipe's own .tflite files run by LiteRT (`ai-edge-litert`, XNNPACK) on the CPU.

LiteRT runs the files one sample a call, so a batch is a loop over its faces (a face's two eyes: one batch-2
call); per face the crop is cut straight from the uint8 frame to the network's input size with one
cv2.warpAffine (rotation, scale and the left eye's mirroring in one matrix, bilinear, black outside the frame, as
the torch port's grid_sample), so no whole frame is converted or resampled per call; only detection shrinks a
whole frame, to 128 px, on the frames the tracker detects in.
BlazeFace's decoding and weighted NMS are the torch port's own (models/facemesh/detection.py), on its few outputs.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from ai_edge_litert.interpreter import Interpreter

from models.assets import tflite_model_path
from models.facemesh.detection import DetectionConfig, in_frame, placement
from models.facemesh.engines import FaceCandidates
from models.facemesh.face_rois import FaceRois, crop_matrix, points_to_frame
from models.facemesh.networks import (
    DETECTOR_FILE,
    DETECTOR_SIZE,
    EYE_FILE,
    EYE_POINTS,
    EYE_SIZE,
    IRIS_POINTS,
    MESH_FILE,
    MESH_POINTS,
    MESH_SIZE,
)

WARP_FLAGS = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP


class TfliteNetwork:
    """One .tflite file in a LiteRT interpreter: `batch` (H, W, 3) images in, its outputs (largest first) out, one
    flat row per image."""

    def __init__(self, filename: str, threads: int, batch: int = 1) -> None:
        self.interpreter = Interpreter(model_path=str(tflite_model_path(filename)),
                                       num_threads=threads if threads > 0 else None)
        self.input = self.interpreter.get_input_details()[0]["index"]
        if batch != 1:  # the files take one sample; XNNPACK runs a resized batch in one call
            shape = self.interpreter.get_input_details()[0]["shape"]
            self.interpreter.resize_tensor_input(self.input, [batch, *shape[1:]])
        self.interpreter.allocate_tensors()
        self.batch = batch
        # Output order differs between files (points or box regressors are always the larger output).
        details = sorted(self.interpreter.get_output_details(), key=lambda d: -int(np.prod(d["shape"])))
        self.outputs = [d["index"] for d in details]

    def __call__(self, images: list[np.ndarray], scale: float, shift: float = 0.0) -> list[np.ndarray]:
        """Outputs for the inputs `image * scale + shift` (`batch` contiguous uint8 images, normalised as the network
        expects), each (batch, n)."""
        if len(images) != self.batch:
            raise ValueError(f"this network runs {self.batch} images a call, got {len(images)}")
        # Normalised straight into the interpreter's input buffer (no copy); the view must be gone before invoke.
        view = self.interpreter.tensor(self.input)()
        for row, image in enumerate(images):
            np.multiply(image, np.float32(scale), out=view[row], casting="unsafe")
        if shift:
            view += np.float32(shift)
        del view
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(index).reshape(self.batch, -1) for index in self.outputs]


def cut(frame: np.ndarray, centre: np.ndarray, size: float, angle: float, side: int, mirrored: bool = False
        ) -> np.ndarray:
    """The side x side uint8 crop of a rotated square of an RGB uint8 frame (black outside the frame), (side, side, 3)
    contiguous.

    Only the frame region the square reaches is read: it goes to RGBA first, because OpenCV's bilinear warp has a
    vectorised path for 4 channels and not for 3 (measured 0.35 vs 0.54 ms for a 192-px crop, conversion included;
    the two differ by at most one gray level)."""
    matrix = crop_matrix(centre, size, angle, side, mirrored)
    reach = (abs(matrix[0, 0]) + abs(matrix[0, 1])) * side / 2 + 2  # half the square's extent, + bilinear margin
    height, width = frame.shape[:2]
    left, top = max(0, int(centre[0] - reach)), max(0, int(centre[1] - reach))
    right, bottom = min(width, int(centre[0] + reach) + 2), min(height, int(centre[1] + reach) + 2)
    if right <= left or bottom <= top:  # entirely outside the frame
        return np.zeros((side, side, 3), np.uint8)
    region = cv2.cvtColor(frame[top:bottom, left:right], cv2.COLOR_RGB2RGBA)
    matrix[:, 2] -= (left, top)
    crop = cv2.warpAffine(region, matrix, (side, side), flags=WARP_FLAGS, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)
    # Back to contiguous RGB: normalising a strided [..., :3] view into the input costs 5x more than this copy.
    return cv2.cvtColor(crop, cv2.COLOR_RGBA2RGB)


def detector_input(frame: np.ndarray) -> tuple[np.ndarray, float, tuple[int, int]]:
    """A frame shrunk into BlazeFace's 128x128 input (uint8, black around it), with the scale and (left, top)
    offset that place it there (models.facemesh.detection.placement)."""
    place = placement(*frame.shape[:2])
    # INTER_AREA: an antialiased shrink, as the torch port's (bilinear alone aliases a 640-px frame at 128 px).
    small = cv2.resize(frame, (place.width, place.height), interpolation=cv2.INTER_AREA)
    pixels = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.uint8)
    pixels[place.top:place.top + place.height, place.left:place.left + place.width] = small
    return pixels, place.scale, (place.left, place.top)


class LiteRtEngine:
    def __init__(self, detection: DetectionConfig, refine_eyes: bool, threads: int) -> None:
        self.detection = detection
        self.detector_net = TfliteNetwork(DETECTOR_FILE, threads)
        self.mesh_net = TfliteNetwork(MESH_FILE, threads)
        # Both eyes of a face in one call: ~3% less than two calls (docs/performance.md).
        self.eye_net = TfliteNetwork(EYE_FILE, threads, batch=2) if refine_eyes else None

    def load(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return frames  # read where they are: crops are cut from the uint8 frames themselves

    def detect(self, frames: list[np.ndarray], which: list[int]) -> FaceCandidates:
        regressors, logits, scales, offsets = [], [], [], []
        for index in which:
            pixels, scale, offset = detector_input(frames[index])
            boxes, scores = self.detector_net([pixels], 1 / 127.5, -1.0)  # BlazeFace wants -1..1
            regressors.append(boxes.reshape(-1, 16))
            logits.append(scores[0])
            scales.append(scale)
            offsets.append(offset)
        found = in_frame(torch.from_numpy(np.stack(regressors)), torch.from_numpy(np.stack(logits)),
                         torch.tensor(scales, dtype=torch.float32), torch.tensor(offsets, dtype=torch.float32),
                         self.detection)
        return FaceCandidates(found.boxes.numpy(), found.keypoints.numpy(), found.valid.numpy())

    def mesh(self, frames: list[np.ndarray], frame_index: list[int], rois: FaceRois) -> tuple[np.ndarray, np.ndarray]:
        points = np.empty((len(rois), MESH_POINTS, 3), np.float32)
        logits = np.empty(len(rois), np.float32)
        for row, index in enumerate(frame_index):
            pixels = cut(frames[index], rois.centre[row], rois.size[row], rois.angle[row], MESH_SIZE)
            mesh, presence = self.mesh_net([pixels], 1 / 255)
            points[row], logits[row] = mesh.reshape(MESH_POINTS, 3), presence[0, 0]
        return points_to_frame(points, rois, MESH_SIZE).astype(np.float32), logits

    def eyes(self, frames: list[np.ndarray], frame_index: list[int], rois: FaceRois,
             mirrored: list[bool]) -> np.ndarray:
        """ROIs come in pairs (a face's two eyes, models/facemesh/eyes.py): each pair is one batch-2 call."""
        if self.eye_net is None:
            raise RuntimeError("this engine was built without the eye network (refine_eyes off)")
        if len(rois) % 2:
            raise ValueError("eye ROIs come in pairs, the two eyes of a face")
        points = np.empty((len(rois), EYE_POINTS + IRIS_POINTS, 3), np.float32)
        for first in range(0, len(rois), 2):
            pair = (first, first + 1)
            pixels = [cut(frames[frame_index[row]], rois.centre[row], rois.size[row], rois.angle[row], EYE_SIZE,
                          mirrored[row]) for row in pair]
            contours, iris = self.eye_net(pixels, 1 / 255)
            points[first:first + 2, :EYE_POINTS] = contours.reshape(2, EYE_POINTS, 3)
            points[first:first + 2, EYE_POINTS:] = iris.reshape(2, IRIS_POINTS, 3)
        flipped = np.asarray(mirrored)
        points[flipped, :, 0] = EYE_SIZE - points[flipped, :, 0]  # back from the mirrored crop: u -> 64 - u
        return points_to_frame(points, rois, EYE_SIZE).astype(np.float32)

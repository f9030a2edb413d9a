"""The torch port of BlazeFace, FaceMesh and the eye network against the reference TFLite interpreter, on real
faces, batched.

The interpreter runs one image at a time; the port runs the whole batch in one call, so a batch mix-up
(wrong reshape, cross-talk between images) shows up as a mismatch too. Measured on these inputs (x86 CPU,
torch 2.x, ai-edge-litert): FaceMesh points 6e-5 crop px, presence logits 3e-5; ONNX vs torch 1.4e-4 px.
BlazeFace on anchors that can matter (logit > -5): logits 5e-6, box/keypoint regressors 2e-5 px. Far-off
anchors carry garbage values up to ~3e4, where float32 rounding alone gives absolute errors ~1e-2, so those
are compared relative to their size (measured 6e-4). Eye network on 16 real eye crops (8 faces x 2 eyes, the left
eye mirrored as the tracker feeds it): torch vs TFLite 2e-5 crop px (of 64); ONNX vs torch 5e-5 px.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from evaluation.facemesh_reference import CropTransform, decode, dlib_face
from models.assets import tflite_model_path
from models.facemesh.networks import (
    DETECTOR_SIZE,
    EYE_SIZE,
    RuntimeConfig,
    as_pixels,
    detector_runner,
    eye_net,
    eye_runner,
    face_detector,
    face_mesh,
    mesh_runner,
)
from models.facemesh.roi import Roi, crop

MESH_TOLERANCE_PX = 1e-3  # crop pixels (192 across); 10x the worst measured, 1/1000 of a pixel
LOGIT_TOLERANCE = 1e-3
RELATIVE_TOLERANCE = 5e-3  # far-off detector anchors, error / max(1, |value|)
LIVE_ANCHOR_LOGIT = -5.0  # sigmoid(-5) = 0.007: anchors below this are never near the 0.5 threshold


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Eight real frames with a face: two people, different head poses and mouth shapes."""
    return list(decode("WolfgangLanger_Pexels.mp4", step=60, limit=6)) + list(decode("single_face.mp4", 30, 2))


@pytest.fixture(scope="module")
def face_crops(frames) -> list[np.ndarray]:
    crops = []
    for frame in frames:
        face = dlib_face(frame)
        assert face is not None
        crops.append(CropTransform.around(face[0]).cut(frame))
    return crops


@pytest.fixture(scope="module")
def eye_crops(frames) -> list[np.ndarray]:
    """64x64 crops of both eyes of each face, placed from dlib's eye corners; the left eye mirrored."""
    crops = []
    for frame in frames:
        points = torch.from_numpy(dlib_face(frame)[1]).float()
        for outer, inner, mirror in ((36, 39, False), (42, 45, True)):
            start, end = points[outer], points[inner]
            delta = end - start
            roi = Roi(((start + end) / 2)[None], (delta.norm() * 2.3)[None], torch.atan2(delta[1], delta[0])[None])
            pixels = crop([torch.from_numpy(frame).permute(2, 0, 1)], [0], roi, EYE_SIZE)[0]
            image = pixels.flip(-1) if mirror else pixels
            crops.append(image.permute(1, 2, 0).round().clamp(0, 255).numpy().astype(np.uint8))
    return crops


@pytest.fixture(scope="module")
def detector_inputs(frames) -> list[np.ndarray]:
    """Whole frames padded square and shrunk to 128x128, as the detector sees them."""
    out = []
    for frame in frames:
        side = max(frame.shape[:2])
        square = np.zeros((side, side, 3), np.uint8)
        square[:frame.shape[0], :frame.shape[1]] = frame
        out.append(cv2.resize(square, (DETECTOR_SIZE, DETECTOR_SIZE), interpolation=cv2.INTER_AREA))
    return out


def interpret(filename: str, images: list[np.ndarray], scale: float, shift: float) -> list[list[np.ndarray]]:
    """The reference: the TFLite interpreter on each image (NHWC, normalised as the model expects)."""
    interpreter = Interpreter(model_path=str(tflite_model_path(filename)))
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    outputs = []
    for image in images:
        interpreter.set_tensor(index, (image.astype(np.float32) * scale + shift)[None])
        interpreter.invoke()
        outputs.append([interpreter.get_tensor(d["index"]).copy() for d in interpreter.get_output_details()])
    return outputs


@pytest.fixture(scope="module")
def mesh_reference(face_crops) -> tuple[np.ndarray, np.ndarray]:
    outputs = interpret("face_landmark.tflite", face_crops, 1 / 255, 0.0)
    return np.stack([o[0].reshape(468, 3) for o in outputs]), np.array([o[1].reshape(()) for o in outputs])


@pytest.fixture(scope="module")
def detector_reference(detector_inputs) -> tuple[np.ndarray, np.ndarray]:
    outputs = interpret("face_detection_short_range.tflite", detector_inputs, 1 / 127.5, -1.0)
    return np.stack([o[0][0] for o in outputs]), np.stack([o[1][0, :, 0] for o in outputs])


@pytest.fixture(scope="module")
def eye_reference(eye_crops) -> tuple[np.ndarray, np.ndarray]:
    outputs = interpret("iris_landmark.tflite", eye_crops, 1 / 255, 0.0)
    return np.stack([o[0].reshape(71, 3) for o in outputs]), np.stack([o[1].reshape(5, 3) for o in outputs])


def test_inputs_are_faces(mesh_reference, detector_reference):
    """Guard: the comparison is on faces the reference itself recognises, not on noise."""
    assert (mesh_reference[1] > 0).all()
    assert (detector_reference[1].max(axis=1) > 0).all()


@torch.inference_mode()
def test_mesh_torch_matches_tflite_in_one_batch(face_crops, mesh_reference):
    points, logits = face_mesh()(as_pixels(face_crops))
    assert points.shape == (len(face_crops), 468, 3)
    assert np.abs(points.numpy() - mesh_reference[0]).max() < MESH_TOLERANCE_PX
    assert np.abs(logits.numpy() - mesh_reference[1]).max() < LOGIT_TOLERANCE


def test_mesh_onnx_matches_torch(face_crops, mesh_reference):
    pixels = as_pixels(face_crops)
    onnx_points, onnx_logits = mesh_runner(RuntimeConfig(runtime="onnx"))(pixels)
    torch_points, torch_logits = mesh_runner(RuntimeConfig(runtime="torch"))(pixels)
    assert np.abs(onnx_points.numpy() - torch_points.numpy()).max() < MESH_TOLERANCE_PX
    assert np.abs(onnx_logits.numpy() - torch_logits.numpy()).max() < LOGIT_TOLERANCE
    assert np.abs(onnx_points.numpy() - mesh_reference[0]).max() < MESH_TOLERANCE_PX


def test_eye_inputs_are_eyes(eye_reference):
    """Guard: on a real eye crop the reference puts the iris centre near the crop centre, between the corners."""
    contours, iris = eye_reference
    assert np.abs(iris[:, 0, :2] - EYE_SIZE / 2).max() < EYE_SIZE / 6
    assert (contours[:, 0, 0] < iris[:, 0, 0]).all() and (iris[:, 0, 0] < contours[:, 8, 0]).all()


@torch.inference_mode()
def test_eye_network_torch_matches_tflite_in_one_batch(eye_crops, eye_reference):
    contours, iris = eye_net()(as_pixels(eye_crops))
    assert contours.shape == (len(eye_crops), 71, 3) and iris.shape == (len(eye_crops), 5, 3)
    assert np.abs(contours.numpy() - eye_reference[0]).max() < MESH_TOLERANCE_PX
    assert np.abs(iris.numpy() - eye_reference[1]).max() < MESH_TOLERANCE_PX


def test_eye_network_onnx_matches_torch(eye_crops, eye_reference):
    pixels = as_pixels(eye_crops)
    onnx = eye_runner(RuntimeConfig(runtime="onnx"))(pixels)
    ported = eye_runner(RuntimeConfig(runtime="torch"))(pixels)
    for ours, theirs, reference in zip(onnx, ported, eye_reference, strict=True):
        assert np.abs(ours.numpy() - theirs.numpy()).max() < MESH_TOLERANCE_PX
        assert np.abs(ours.numpy() - reference).max() < MESH_TOLERANCE_PX


def assert_detector_close(regressors: np.ndarray, logits: np.ndarray, reference: tuple[np.ndarray, np.ndarray]):
    ref_regressors, ref_logits = reference
    live = ref_logits > LIVE_ANCHOR_LOGIT
    assert live.any(axis=1).all()
    assert np.abs(logits - ref_logits)[live].max() < LOGIT_TOLERANCE
    assert np.abs(regressors - ref_regressors)[live].max() < MESH_TOLERANCE_PX
    assert (np.abs(logits - ref_logits) / np.maximum(1, np.abs(ref_logits))).max() < RELATIVE_TOLERANCE
    assert (np.abs(regressors - ref_regressors) / np.maximum(1, np.abs(ref_regressors))).max() < RELATIVE_TOLERANCE


@torch.inference_mode()
def test_detector_torch_matches_tflite_in_one_batch(detector_inputs, detector_reference):
    regressors, logits = face_detector()(as_pixels(detector_inputs))
    assert regressors.shape == (len(detector_inputs), 896, 16)
    assert_detector_close(regressors.numpy(), logits.numpy(), detector_reference)


def test_detector_onnx_matches_tflite(detector_inputs, detector_reference):
    regressors, logits = detector_runner(RuntimeConfig(runtime="onnx"))(as_pixels(detector_inputs))
    assert_detector_close(regressors.numpy(), logits.numpy(), detector_reference)

"""The LiteRT landmark engine (MediaPipe's .tflite files on LiteRT, crops by cv2.warpAffine) against the torch port,
the reference, on real frames of the talking-face clip.

Both engines get the same ROIs, so what differs is the crop (cv2's fixed-point bilinear into uint8 vs grid_sample in
float) and the kernels. Measured on these frames (x86 CPU, ai-edge-litert 2.3.0): crop pixels 0.2 gray levels mean,
0.5 max (the uint8 rounding); FaceMesh points 0.035 px mean, 0.13 px max (eye distance ~140 px: 0.0009 of it),
presence logits 0.08; eye network 0.19 px max; BlazeFace (INTER_AREA vs antialiased bilinear shrink) boxes 1.2 px,
keypoints 2.4 px on 230-px faces. A half-pixel crop offset measures 5 gray levels, a mirror mix-up 32: the crop
tolerances catch both.

Tracking the clip's 120 frames, each runtime from its own previous mesh, the ROIs drift apart a little, and FaceMesh
itself moves its points by 0.6-2.3 px when its crop moves by 0.3 px (measured on frames 95-119): 68-point error over
the inter-ocular distance median 0.0005 per frame, mean 0.0022, worst point 0.044 (frames 105-117, a fast turn).
For scale: the same points against dlib's measure 0.05.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from evaluation.facemesh_reference import point_errors
from models.config import LandmarkSettings, resolve_landmark_runtime
from models.facemesh import litert_engine
from models.facemesh.eyes import eye_rois
from models.facemesh.face_rois import FaceRois, rois_from_landmarks
from models.facemesh.litert_engine import LiteRtEngine
from models.facemesh.networks import EYE_SIZE, MESH_SIZE, RuntimeConfig
from models.facemesh.roi import Roi, crop
from models.facemesh.torch_engine import TorchEngine
from models.facemesh.tracker import MeshLandmarkStage, MeshTrackerConfig, MeshTrackState
from models.pipeline import PipelineConfig, ReenactmentPipeline
from options import OptionError

CROP_MAX_LEVELS = 1.0  # gray levels: uint8 rounding (0.5) plus cv2's 1/32-pixel fixed-point bilinear
CROP_MEAN_LEVELS = 0.35
MESH_TOLERANCE = 0.005  # of the eye-corner distance (~0.7 px on these faces), 5x the worst measured
MESH_MAX_PX = 0.5
LOGIT_TOLERANCE = 0.25
EYE_MAX_PX = 0.5  # eye crops are ~90 px across the 64-px input
DETECTION_TOLERANCE = 0.025  # of the face box width: two antialiased shrinks of the whole frame differ
# 68-point errors over the inter-ocular distance while tracking the clip (measured: 0.044 worst, 0.0022 mean, 0.0005
# median frame)
TRACK_MAX_NME = 0.08
TRACK_MEAN_NME = 0.005
TRACK_MEDIAN_FRAME_NME = 0.002


@pytest.fixture(scope="module")
def frames(talking_face_frames) -> list[np.ndarray]:
    return talking_face_frames[::10]  # 12 frames over 4 s: head turns, mouth and eyes open and closed


@pytest.fixture(scope="module")
def engines() -> tuple[TorchEngine, LiteRtEngine]:
    reference = MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig("torch"))).engine
    fast = MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig("litert"))).engine
    assert isinstance(reference, TorchEngine) and isinstance(fast, LiteRtEngine)
    return reference, fast


@pytest.fixture(scope="module")
def meshes(frames) -> np.ndarray:
    """The torch stage's mesh of each frame (detected, then tracked once from its own mesh)."""
    stage = MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig("torch")))
    found = []
    for frame in frames:
        state = MeshTrackState()
        for _ in range(2):
            stage.track([frame], [state])
        assert state.mesh is not None
        found.append(state.mesh)
    return np.stack(found)


def litert_crops(frames: list[np.ndarray], index: list[int], rois: FaceRois, side: int,
                 mirrored: list[bool]) -> np.ndarray:
    return np.stack([litert_engine.cut(frames[i], rois.centre[row], rois.size[row], rois.angle[row], side,
                                       mirrored[row]) for row, i in enumerate(index)]).astype(np.float32)


def torch_crops(frames: list[np.ndarray], index: list[int], rois: FaceRois, side: int,
                mirrored: list[bool]) -> np.ndarray:
    tensors = [torch.from_numpy(frame).permute(2, 0, 1) for frame in frames]
    pixels = crop(tensors, index, Roi.from_numpy(rois), side)
    flip = torch.tensor(mirrored)
    pixels[flip] = pixels[flip].flip(-1)
    return pixels.permute(0, 2, 3, 1).numpy()


def assert_crops_agree(ours: np.ndarray, reference: np.ndarray) -> None:
    difference = np.abs(ours - reference)
    assert difference.max() <= CROP_MAX_LEVELS and difference.mean() < CROP_MEAN_LEVELS


def test_face_crops_match_grid_sample(frames, meshes) -> None:
    rois, index = rois_from_landmarks(meshes), list(range(len(frames)))
    plain = [False] * len(rois)
    assert_crops_agree(litert_crops(frames, index, rois, MESH_SIZE, plain),
                       torch_crops(frames, index, rois, MESH_SIZE, plain))


def test_mirrored_eye_crops_match_flipped_grid_sample(frames, meshes) -> None:
    rois, mirrored = eye_rois(meshes)
    assert mirrored == [False, True] * len(meshes)
    index = [i for i in range(len(frames)) for _ in range(2)]
    assert_crops_agree(litert_crops(frames, index, rois, EYE_SIZE, mirrored),
                       torch_crops(frames, index, rois, EYE_SIZE, mirrored))


def test_mesh_points_match_the_torch_port_on_the_same_rois(frames, meshes, engines) -> None:
    reference, fast = engines
    rois, index = rois_from_landmarks(meshes), list(range(len(frames)))
    expected, expected_logits = reference.mesh(reference.load(frames), index, rois)
    points, logits = fast.mesh(fast.load(frames), index, rois)
    assert points.shape == (len(frames), 468, 3) and points.dtype == np.float32
    error = np.linalg.norm(points[..., :2] - expected[..., :2], axis=-1)
    eye_distance = np.linalg.norm(expected[:, 33, :2] - expected[:, 263, :2], axis=-1)
    assert (error / eye_distance[:, None]).max() < MESH_TOLERANCE and error.max() < MESH_MAX_PX
    assert np.abs(points[..., 2] - expected[..., 2]).max() < MESH_MAX_PX
    assert (logits > 0).all() and np.abs(logits - expected_logits).max() < LOGIT_TOLERANCE


def test_eye_points_match_the_torch_port_on_the_same_rois(frames, meshes, engines) -> None:
    reference, fast = engines
    rois, mirrored = eye_rois(meshes)
    index = [i for i in range(len(frames)) for _ in range(2)]
    expected = reference.eyes(reference.load(frames), index, rois, mirrored)
    points = fast.eyes(fast.load(frames), index, rois, mirrored)
    assert points.shape == (2 * len(frames), 76, 3)
    assert np.linalg.norm(points[..., :2] - expected[..., :2], axis=-1).max() < EYE_MAX_PX


def test_detections_match_the_torch_port(frames, engines) -> None:
    reference, fast = engines
    index = list(range(len(frames)))
    expected, found = reference.detect(reference.load(frames), index), fast.detect(fast.load(frames), index)
    np.testing.assert_array_equal(found.valid, expected.valid)
    assert found.valid[:, 0].all()
    width = (expected.boxes[:, 0, 2] - expected.boxes[:, 0, 0])[:, None]
    assert (np.abs(found.boxes[:, 0] - expected.boxes[:, 0]) / width).max() < DETECTION_TOLERANCE
    assert (np.abs(found.keypoints[:, 0] - expected.keypoints[:, 0]) / width[..., None]).max() < DETECTION_TOLERANCE


def test_tracking_the_clip_gives_the_torch_ports_landmarks(talking_face_frames) -> None:
    stages = [MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig(runtime))) for runtime in ("torch", "litert")]
    states = [MeshTrackState(), MeshTrackState()]
    errors, irises = [], []
    for frame in talking_face_frames:
        expected, points = (stage.track([frame], [state])[0] for stage, state in zip(stages, states, strict=True))
        assert (points is None) == (expected is None)
        errors.append(point_errors(points, expected))
        irises.append(np.abs(states[1].iris - states[0].iris).max())
    errors = np.stack(errors)
    assert errors.max() < TRACK_MAX_NME and errors.mean() < TRACK_MEAN_NME
    assert np.median(errors.mean(axis=1)) < TRACK_MEDIAN_FRAME_NME
    assert np.median(irises) < EYE_MAX_PX


def test_a_batch_is_each_face_alone(talking_face_frames) -> None:
    """LiteRT runs one face a call; a batch of several streams is the same loop, so the points are identical."""
    stage = MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig("litert")))
    streams = [talking_face_frames[:8], talking_face_frames[40:48], talking_face_frames[80:88]]
    alone = []
    for frames in streams:
        state = MeshTrackState()
        alone.append([stage.track([frame], [state])[0] for frame in frames])
    states = [MeshTrackState() for _ in streams]
    for step, frames in enumerate(zip(*streams, strict=True)):
        for stream, points in enumerate(stage.track(list(frames), states)):
            np.testing.assert_array_equal(points, alone[stream][step])


def test_litert_is_the_cpu_default_and_torch_the_gpu_one() -> None:
    assert LandmarkSettings().landmark_runtime == "auto"
    assert resolve_landmark_runtime("auto", "cpu") == "litert"
    assert resolve_landmark_runtime("auto", "cuda") == "torch"
    assert resolve_landmark_runtime("onnx", "cpu") == "onnx"
    pipeline = ReenactmentPipeline(PipelineConfig(generator="warp", output_size=128))
    assert isinstance(pipeline.mesh_stage.engine, LiteRtEngine)
    with pytest.raises(OptionError, match="CPU only"):
        LandmarkSettings(landmark_runtime="litert", device="cuda")
    with pytest.raises(ValueError, match="CPU only"):
        MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig("litert", device="cuda")))


def test_the_stage_runs_opencv_on_one_thread_and_puts_its_count_back(talking_face_frames, monkeypatch) -> None:
    """OpenCV's pool splits even a 64x64 warp and then spins: 2.7 of 13 ms CPU per frame (measured)."""
    stage = MeshLandmarkStage(MeshTrackerConfig(RuntimeConfig("litert")))
    seen, mesh = [], stage.engine.mesh

    def spy(*args):
        seen.append(cv2.getNumThreads())
        return mesh(*args)

    monkeypatch.setattr(stage.engine, "mesh", spy)
    cv2.setNumThreads(2)
    try:
        stage.track([talking_face_frames[0]], [MeshTrackState()])
        assert seen and set(seen) == {1} and cv2.getNumThreads() == 2  # a new face: several reads (settling)
    finally:
        cv2.setNumThreads(cv2.getNumberOfCPUs())

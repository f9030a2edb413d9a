"""Landmark disentanglement: the expression basis and regressor, fitted on real video landmarks."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.assets import gallery, sample_media
from models.face_measures import mouth_opening
from models.marionette.landmark_disentangle import (
    ExpressionModel,
    PCALandmarkTransformer,
    RegressorLandmarkTransformer,
    fit_expression_model,
)
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline
from models.transformer import TransformerConfig
from training.fit_landmarks import main as fit_main
from training.fit_landmarks import video_landmarks


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return video_landmarks(sample_media("WolfgangLanger_Pexels.mp4"))


@pytest.fixture(scope="module")
def model(clip: np.ndarray) -> ExpressionModel:
    """Fitted on the first 70% of the clip plus another person's clip; the last 30% is held out."""
    other = video_landmarks(sample_media("single_face.mp4"))
    return fit_expression_model([clip[: int(0.7 * len(clip))], other], components=12, regressor=True, steps=1500)


def test_basis_is_orthonormal_and_ordered(model: ExpressionModel) -> None:
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(12), atol=1e-5)
    assert np.all(np.diff(model.explained) <= 0) and model.explained.sum() > 0.9


def _mouth_correlation(transformer, clip: np.ndarray, neutral: np.ndarray) -> float:
    held_out = clip[int(0.7 * len(clip)):]
    target = clip[0] * np.array([1.3, 1.0])  # a wider face: identity must not leak into the result
    out = [mouth_opening(transformer.transform(frame, neutral, target)) for frame in held_out]
    return float(np.corrcoef(out, [mouth_opening(f) for f in held_out])[0, 1])


def test_pca_transformer_keeps_target_at_rest_and_moves_its_mouth(model: ExpressionModel, clip: np.ndarray) -> None:
    transformer = PCALandmarkTransformer(TransformerConfig(), model)
    target = clip[0] * np.array([1.3, 1.0])
    np.testing.assert_allclose(transformer.transform(clip[5], clip[5], target), target, atol=1e-3)
    assert _mouth_correlation(transformer, clip, neutral=clip[0]) > 0.8


def test_regressor_transformer_needs_no_neutral_face(model: ExpressionModel, clip: np.ndarray) -> None:
    transformer = RegressorLandmarkTransformer(TransformerConfig(), model)
    assert _mouth_correlation(transformer, clip, neutral=clip[0]) > 0.6


def test_cli_fits_saves_and_the_pipeline_loads_it(tmp_path: Path, talking_face_frames) -> None:
    out = tmp_path / "expression.npz"
    assert fit_main(["--video", str(sample_media("single_face.mp4")), "--out", str(out), "--components", "6"]) == 0
    loaded = ExpressionModel.load(out)
    assert loaded.components.shape == (6, 136) and loaded.regressor is None
    pipeline = ReenactmentPipeline(PipelineConfig(generator="warp", transformer="pca", expression_model=str(out)))
    photo = cv2.cvtColor(cv2.imread(str(gallery()[0].path)), cv2.COLOR_BGR2RGB)
    target = pipeline.prepare_target([photo])
    driver = pipeline.new_driver()
    results = pipeline.process([FrameJob(driver, target, frame) for frame in talking_face_frames[:1]])
    assert results[0].face_found and results[0].image.shape == (256, 256, 3)
    without_regressor = ReenactmentPipeline(PipelineConfig(transformer="regressor", expression_model=str(out)))
    with pytest.raises(ValueError, match="no regressor"):
        without_regressor.transformer.model.predict(clip_frame_landmarks())
    with pytest.raises(ValueError, match="needs an expression model"):
        ReenactmentPipeline(PipelineConfig(transformer="pca"))


def clip_frame_landmarks() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 100, (68, 2))

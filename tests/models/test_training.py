"""Data preparation and training on CPU: shards, resume, logs, samples, and DDP with 2 gloo processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from loadtest.local_server import REPO_ROOT
from models.assets import sample_media
from models.marionette.runtime import load_generator
from training.prepare import PrepareConfig, prepare
from training.train import main as train_main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    videos = tmp_path_factory.mktemp("videos")
    for name in ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "no_face.mp4"):
        shutil.copy(sample_media(name), videos / name)
    (videos / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path_factory.mktemp("data")
    config = PrepareConfig(videos, out, size=128, workers=2, heldout_fraction=0.0, max_frames=40)
    result = prepare(config)
    assert set(result["skipped"]) == {str(videos / "no_face.mp4"), str(videos / "broken.mp4")}
    assert result["shards"] == {"train": 2, "heldout": 0}
    assert prepare(config)["prepared_now"] == 0  # resumable: nothing left to do
    return out


def test_shards_hold_aligned_faces(dataset: Path) -> None:
    with np.load(dataset / "train" / "single_face.npz") as shard:
        frames, landmarks = shard["frames"], shard["landmarks"]
    assert frames.shape[1:] == (128, 128, 3) and frames.dtype == np.uint8
    assert landmarks.shape == (len(frames), 68, 2)
    assert landmarks.min() > 0 and landmarks.max() < 128  # the face is inside the crop


def test_train_logs_samples_and_resumes(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["--data", str(dataset), "--out", str(run), "--batch", "2", "--image-size", "64", "--log-every", "2",
            "--sample-every", "2", "--checkpoint-every", "2"]
    assert train_main([*args, "--steps", "4"]) == 0
    assert train_main([*args, "--steps", "6"]) == 0  # resumes at step 4
    rows = (run / "log.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,") and [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 6
    assert (run / "samples" / "step_000006.png").stat().st_size > 1000
    assert (run / "expression.npz").exists()
    loaded = load_generator("base", run / "generator.pt")
    assert (loaded.config.name, loaded.config.image_size) == ("lite", 64)  # the file's config and size win
    # Export to ONNX checks itself against torch and says so.
    from training.export import main as export_main

    assert export_main(["--weights", str(run / "generator.pt"), "--out", str(tmp_path / "onnx")]) == 0
    assert (tmp_path / "onnx" / "marionette_lite_decode.onnx").stat().st_size > 100_000


def test_ddp_with_two_gloo_processes_keeps_replicas_identical(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training.train",
         "--data", str(dataset), "--out", str(run), "--steps", "3", "--batch", "1", "--image-size", "64",
         "--check-replicas"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert json.loads((run / "replicas.json").read_text()) == {"identical": True, "hashes": 2}

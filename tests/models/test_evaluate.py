"""The evaluation CLI on a real clip: the numbers rank the baselines the way they must."""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.evaluate import main
from models.assets import sample_media


def test_evaluation_ranks_warp_above_the_still_photo(tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["--data", str(sample_media("single_face.mp4")), "--out", str(out), "--max-frames", "16",
                 "--generators", "marionette,warp,still"]) == 0
    report = json.loads((out / "report.json").read_text())
    warp, still = report["generators"]["warp"], report["generators"]["still"]
    # The still photo ignores the driver: worst motion transfer, perfect identity, no jitter.
    assert warp["self"]["landmark_nme"] < 0.5 * still["self"]["landmark_nme"]
    assert still["self"]["identity_similarity"] > 0.99 and still["self"]["jitter"] == 0
    # Self-reenactment has ground truth: following the driver must beat standing still.
    assert warp["self"]["ssim"] > still["self"]["ssim"] and warp["self"]["psnr"] > still["self"]["psnr"]
    assert warp["self"]["identity_similarity"] > 0.9
    assert warp["cross"]["identity_leakage"] is not None and warp["cross"]["fps"] > 0
    # An untrained marionette network (no --weights) outputs noise: fidelity far below the warp's.
    marionette = report["generators"]["marionette"]["self"]
    assert marionette["fps"] > 0 and marionette["ssim"] is not None and marionette["ssim"] < warp["self"]["ssim"] - 0.2
    assert (out / "report.md").read_text().startswith("# Evaluation")
    assert "| marionette | self |" in (out / "report.md").read_text()
    assert (out / "samples.png").stat().st_size > 10_000

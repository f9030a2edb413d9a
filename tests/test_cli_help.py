"""Every command a person runs answers --help with a usage text and exit status 0 (and imports cleanly)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
COMMANDS = [
    "server", "server.selfsigned", "loadtest", "loadtest.soak", "loadtest.room_bench", "models.reenact",
    "models.asset_fetch",
    "training.prepare", "training.train", "training.export", "training.fit_landmarks", "training.fit_mapping",
    "evaluation.evaluate", "evaluation.motion", "evaluation.facemesh", "evaluation.few_shot",
    "evaluation.sample_strip", "evaluation.pipeline_bench", "evaluation.bench_facemesh",
    "evaluation.bench_marionette", "evaluation.landmark_bench", "evaluation.mediapipe_worker",
    "evaluation.webcam_like", "evaluation.evalset", "evaluation.hard_cases", "evaluation.stage_loss",
]


def test_every_command_module_is_listed() -> None:
    found = {path.parent.name if path.name == "__main__.py" else f"{path.parent.name}.{path.stem}"
             for package in ("server", "loadtest", "models", "training", "evaluation")
             for path in (REPO / package).glob("*.py") if '__name__ == "__main__"' in path.read_text()}
    assert found <= set(COMMANDS), sorted(found - set(COMMANDS))


@pytest.mark.parametrize("module", COMMANDS)
def test_help(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout and "--help" in result.stdout

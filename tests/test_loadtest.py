"""The load tester end to end: its CLI against a real server started here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.local_server import REPO_ROOT, RunningServer, running_server


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("lt"), "--generator", "passthrough", "--max-sessions", "2",
                        "--admission", "cap") as server:
        yield server


def run_loadtest(tmp_path: Path, *args: str, quiet: bool = True) -> dict:
    report_path = tmp_path / "report.json"
    completed = subprocess.run(
        [sys.executable, "-m", "loadtest", *args, "--json", str(report_path), *(["--quiet"] if quiet else [])],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )
    (tmp_path / "stderr.txt").write_text(completed.stderr)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert report_path.with_suffix(".md").read_text().startswith("# Load test")
    assert report_path.with_suffix(".png").stat().st_size > 10_000
    return json.loads(report_path.read_text())


def test_short_run_fills_the_report(small_server: RunningServer, tmp_path: Path) -> None:
    report = run_loadtest(tmp_path, "--url", small_server.url, "--peers", "2", "--duration", "5", "--warmup", "1",
                          quiet=False)
    # stderr is a pipe here, not a terminal: the progress comes as whole lines, about one a second, no redraws.
    stderr = (tmp_path / "stderr.txt").read_text()
    progress = [line for line in stderr.splitlines() if line.startswith("[loadtest] 2 peers")]
    assert "\r" not in stderr and 4 <= len(progress) <= 8, stderr[-2000:]
    assert report["machine"]["cpu_count"] >= 1 and "aiortc" in report["machine"]["versions"]
    run = report["runs"]["model"]
    assert run["server"]["generator"] == "passthrough"
    step = run["steps"][0]
    for peer in step["peers_detail"]:
        assert peer["outcome"] == "ok"
        assert peer["fps"] > 5
        assert peer["matched"] > 0.8 * peer["received"]  # frame ids came back through the server
        assert 0 < peer["latency_p50_ms"] <= peer["latency_p95_ms"] <= peer["latency_max_ms"] < 5000
        assert peer["setup_s"] > 0
    delta = step["server_metrics_delta"]
    assert delta["marionette_frames_in_total"] > 0
    assert delta["marionette_frames_out_total"] > 0
    assert delta["marionette_batch_size"]["count"] > 0


def test_rejected_sessions_are_reported_not_crashed(small_server: RunningServer, tmp_path: Path) -> None:
    report = run_loadtest(tmp_path, "--url", small_server.url, "--peers", "3", "--duration", "3", "--warmup", "1")
    peers = report["runs"]["model"]["steps"][0]["peers_detail"]
    outcomes = sorted(p["outcome"] for p in peers)
    assert outcomes == ["ok", "ok", "rejected"]
    rejected = next(p for p in peers if p["outcome"] == "rejected")
    assert "503" in rejected["error"] and "server full" in rejected["error"]
    assert report["runs"]["model"]["steps"][0]["aggregate"]["rejected"] == 1


def test_bad_arguments_are_refused_clearly(tmp_path: Path) -> None:
    completed = subprocess.run([sys.executable, "-m", "loadtest", "--peers", "1000"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and "--peers must be between 1 and 64" in completed.stderr
    completed = subprocess.run([sys.executable, "-m", "loadtest", "--url", "http://127.0.0.1:9", "--duration", "2",
                                "--warmup", "0.5"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2 and "cannot reach the server" in completed.stderr

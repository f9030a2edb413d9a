"""python -m loadtest --help: synthetic WebRTC callers and a performance report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from evaluation.machine_info import machine_info
from loadtest.config import LoadTestConfig, parse_config
from loadtest.local_server import running_server
from loadtest.report import build_report, markdown, write_report
from loadtest.runner import RunResult, run
from rtc.ice_scope import is_loopback_url

FRAMES_TO_LOOP = 300  # 10 s of video at 30 fps, looped


def load_frames(video: Path | None) -> list[np.ndarray]:
    if video is None:
        from models.assets import sample_media

        video = sample_media("WolfgangLanger_Pexels.mp4")
    frames = []
    try:
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= FRAMES_TO_LOOP:
                    break
    except av.FFmpegError as error:
        raise SystemExit(f"error: cannot read video {video}: {error}") from error
    if not frames:
        raise SystemExit(f"error: no video frames in {video}")
    return frames


@contextlib.contextmanager
def local_passthrough_server(model_server: dict) -> Iterator[str]:
    """Start a passthrough server on this machine with the model server's limits."""
    with tempfile.TemporaryDirectory() as log_dir, running_server(
        Path(log_dir), "--generator", "passthrough",
        "--max-sessions", str(model_server.get("max_sessions", 8)),
        "--output-size", str(model_server.get("output_size", 256)),
    ) as server:
        yield server.url


def _config_dict(config: LoadTestConfig) -> dict:
    values = dataclasses.asdict(config)
    return json.loads(json.dumps(values, default=str))


async def _run_all(config: LoadTestConfig, frames: list[np.ndarray]) -> dict[str, RunResult]:
    runs = {"model": await run(config, config.url, frames)}
    if config.passthrough_url:
        runs["passthrough"] = await run(config, config.passthrough_url.rstrip("/"), frames)
    elif config.compare_passthrough:
        if not is_loopback_url(config.url):
            raise SystemExit("error: --compare-passthrough starts a local server; for a remote one, "
                             "give --passthrough-url")
        with local_passthrough_server(runs["model"].server_info) as url:
            runs["passthrough"] = await run(config, url, frames)
    return runs


def main(argv: list[str] | None = None) -> int:
    config = parse_config(argv)
    frames = load_frames(config.video)
    try:
        runs = asyncio.run(_run_all(config, frames))
    except OSError as error:
        print(f"error: cannot reach the server at {config.url}: {error}", file=sys.stderr)
        return 2
    report = build_report(_config_dict(config), machine_info(), runs)
    summary = markdown(report)
    print(summary)
    if config.json_out:
        md_path, png_path = write_report(report, config.json_out)
        print(f"report: {config.json_out}, {md_path}, {png_path}")
    else:
        print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

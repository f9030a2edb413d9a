"""Benchmark (a report, not a test): avatar rooms through the built-in relay vs through Janus.

    .venv/bin/python -m loadtest.room_bench --sizes 2,3,4,6 --duration 10 --json out/room_bench.json

For each mode one local server (and, for Janus, one local Janus from deploy/janus) serves rooms of each size
in turn; the load tester's room callers (`python -m loadtest --room`, the same code) run in this process.
Reported per room: each caller's own-avatar fps and p95 latency (frame ids), the fps of the other
participants' avatars as received, and the CPU seconds per generated avatar frame of the server (and of Janus).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from evaluation.machine_info import machine_info
from loadtest.__main__ import load_frames
from loadtest.config import LoadTestConfig
from loadtest.local_janus import running_janus
from loadtest.local_server import running_server
from loadtest.runner import run

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime, all threads


def frames_out(url: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("marionette_frames_out_total "):
                return float(line.split()[1])
    return 0.0


@contextlib.contextmanager
def serving(mode: str, tmp: Path, generator: str, room_size: int) -> Iterator[tuple[str, list[int]]]:
    flags = ["--generator", generator, "--admission", "cap", "--max-sessions", str(room_size + 2),
             "--room-size", str(room_size)]
    with contextlib.ExitStack() as stack:
        pids, env = [], {}
        if mode == "janus":
            janus = stack.enter_context(running_janus(tmp))
            env = janus.server_env()
            pids.append(janus.process.pid)
        server = stack.enter_context(running_server(tmp, *flags, env=env))
        yield server.url, [server.process.pid, *pids]


async def measure(url: str, pids: list[int], size: int, args: argparse.Namespace,
                  frames: list[np.ndarray]) -> dict:
    config = LoadTestConfig(url=url, peers=size, duration_s=args.duration, warmup_s=args.warmup, fps=args.fps,
                            width=args.width, height=args.height, room=True, quiet=True)
    cpu_before, out_before = [cpu_seconds(p) for p in pids], frames_out(url)
    result = await run(config, url, frames)
    cpu = [cpu_seconds(p) - b for p, b in zip(pids, cpu_before, strict=True)]
    generated = frames_out(url) - out_before
    peers = [p for p in result.steps[-1].peer_summaries if p.outcome == "ok"]
    tiles = [f for p in peers for f in (p.tiles_fps or [])]
    p95 = [p.latency_p95_ms for p in peers if p.latency_p95_ms is not None]
    tile_p95 = [p.tile_latency_p95_ms for p in peers if p.tile_latency_p95_ms is not None]
    return {
        "participants": size, "connected": len(peers),
        "own_fps_mean": round(float(np.mean([p.fps for p in peers])), 1) if peers else 0.0,
        "tile_fps_mean": round(float(np.mean(tiles)), 1) if tiles else 0.0,
        "tile_fps_min": round(float(min(tiles)), 1) if tiles else 0.0,
        "tiles": len(tiles),
        "own_p95_ms_mean": round(float(np.mean(p95)), 1) if p95 else None,
        "tile_p95_ms_mean": round(float(np.mean(tile_p95)), 1) if tile_p95 else None,
        "server_cpu_ms_per_frame": round(1000 * cpu[0] / generated, 2) if generated else None,
        "janus_cpu_ms_per_frame": round(1000 * cpu[1] / generated, 2) if generated and len(cpu) > 1 else None,
    }


def markdown(rows: list[dict]) -> str:
    lines = ["| mode | room | own fps | others' fps (mean / min) | own p95 ms | others' p95 ms | server CPU ms/frame "
             "| Janus CPU ms/frame |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['participants']} | {r['own_fps_mean']} | {r['tile_fps_mean']} / "
                     f"{r['tile_fps_min']} ({r['tiles']} tiles) | {r['own_p95_ms_mean']} | {r['tile_p95_ms_mean']} | "
                     f"{r['server_cpu_ms_per_frame']} | {r['janus_cpu_ms_per_frame'] or '-'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.room_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2,3,4,6", help="room sizes, comma-separated")
    parser.add_argument("--modes", default="relay,janus", help="relay, janus or both")
    parser.add_argument("--generator", default="warp")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    frames = load_frames(None)
    rows = []
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as tmp, serving(mode, Path(tmp), args.generator, max(sizes)) as (url, pids):
            for size in sizes:
                row = {"mode": mode, **asyncio.run(measure(url, pids, size, args, frames))}
                print(json.dumps(row), flush=True)
                rows.append(row)
    table = markdown(rows)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine_info(), "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows, "table": table}, indent=2, default=str))


if __name__ == "__main__":
    main()

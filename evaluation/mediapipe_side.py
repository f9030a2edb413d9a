"""MediaPipe's FaceMesh in a process of its own (evaluation/mediapipe_worker.py under another interpreter), fed
frame by frame, so a benchmark can interleave it with ours on the same frames."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import TracebackType

import numpy as np

WORKER = Path(__file__).with_name("mediapipe_worker.py")
REPLY = "@@"


class MediaPipeTracker:
    def __init__(self, python: Path, frame_shape: tuple[int, ...]) -> None:
        if not Path(python).exists():
            raise FileNotFoundError(f"{python}: no such interpreter (make a venv with mediapipe==0.10.21 there)")
        self.shape = tuple(frame_shape[:2])
        self.process = subprocess.Popen([str(python), str(WORKER), str(self.shape[0]), str(self.shape[1])],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=False)
        self.version = self._reply().get("mediapipe")
        self.rows: list[dict] = []

    def _reply(self) -> dict:
        assert self.process.stdout is not None
        while line := self.process.stdout.readline().decode():
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        raise RuntimeError(f"the MediaPipe worker stopped (exit code {self.process.wait()})")

    def _send(self, data: bytes) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()
        return self._reply()

    def restart(self) -> None:
        """A new stream: MediaPipe detects again."""
        self._send(b"R")

    def step(self, frame: np.ndarray, keep: bool) -> None:
        if frame.shape[:2] != self.shape:
            raise ValueError(f"frames must all be {self.shape}, got {frame.shape[:2]}")
        reply = self._send(b"F" + np.ascontiguousarray(frame, np.uint8).tobytes())
        if keep:
            self.rows.append(reply)

    def report(self) -> dict:
        wall = 1000 * np.array([row["wall"] for row in self.rows])
        cpu = 1000 * np.array([row["cpu"] for row in self.rows])
        return {"mediapipe": self.version, "solution": "face_mesh, refine_landmarks=True", "calls": len(self.rows),
                "faces_found": sum(row["found"] for row in self.rows),
                "ms_per_frame": {"cpu_mean": round(float(cpu.mean()), 3), "wall_mean": round(float(wall.mean()), 3),
                                 "cpu_median": round(float(np.median(cpu)), 3),
                                 "wall_median": round(float(np.median(wall)), 3)}}

    def __enter__(self) -> MediaPipeTracker:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

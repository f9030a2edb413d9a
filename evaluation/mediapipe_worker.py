"""MediaPipe's own FaceMesh on frames sent over a pipe, timed: the other side of evaluation.landmark_bench.

Runs in a Python that has mediapipe 0.10.21 (its own virtual environment: it pins numpy<2 and protobuf<5), as a
script, so it imports nothing of this project:

usage: <mediapipe python> evaluation/mediapipe_worker.py HEIGHT WIDTH   (or --help: this text)

stdin: b"F" + HEIGHT*WIDTH*3 bytes of RGB (one frame), or b"R" (start a new stream); stdout: one reply line per
request, starting with REPLY: wall and process-CPU seconds of `FaceMesh.process` (detection + tracking + the
attention model's refined lids and irises, MediaPipe's `refine_landmarks=True`) and whether a face was found.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

REPLY = "@@"


def new_tracker(mp):
    return mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True)


def main() -> int:
    if len(sys.argv) != 3 or not all(arg.isdigit() for arg in sys.argv[1:]):
        print(__doc__)  # --help, or a wrong call
        return 0 if sys.argv[1:] in (["-h"], ["--help"]) else 2
    import mediapipe as mp  # only in MediaPipe's own environment (above): --help works anywhere

    height, width = int(sys.argv[1]), int(sys.argv[2])
    size = height * width * 3
    source, tracker = sys.stdin.buffer, new_tracker(mp)
    print(REPLY + json.dumps({"mediapipe": mp.__version__}), flush=True)
    while command := source.read(1):
        if command == b"R":
            tracker.close()
            tracker = new_tracker(mp)
            print(REPLY + "{}", flush=True)
            continue
        frame = np.frombuffer(source.read(size), np.uint8).reshape(height, width, 3)
        wall, cpu = time.perf_counter(), time.process_time()
        found = tracker.process(frame).multi_face_landmarks is not None
        reply = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "found": found}
        print(REPLY + json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Batched neural face tracking: BlazeFace where needed, then FaceMesh on every session's face.

Each stream keeps a `MeshTrackState`. A stream is tracked from its previous frame's 468 points (the ROI
follows the face, as in MediaPipe); it is detected when it is new, was lost, or every `detect_every`
frames (to confirm the tracked face is still one). FaceMesh's face-presence score decides when a face
is lost. Which detection a new or lost stream takes is models/facemesh/follow.py's rule: one person drives.
With `refine_eyes`, both eyes of every face then go through MediaPipe's eye network in one more call,
and its lid (and iris) points replace the mesh's eye region (models/facemesh/eyes.py). Landmarks are returned
in the iBUG 68-point convention, as dlib gives them. The networks run in a landmark engine
(models/facemesh/engines.py: the batched torch port, or LiteRT on the CPU); the decisions here are the same for both.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from models.facemesh.detection import DetectionConfig
from models.facemesh.engines import landmark_engine
from models.facemesh.eyes import eye_rois, refine_mesh
from models.facemesh.face_rois import FaceRois, rois_from_detection, rois_from_landmarks
from models.facemesh.follow import FollowConfig, box_of, matches, pick
from models.facemesh.mapping import to_ibug68
from models.facemesh.networks import EYE_POINTS, IRIS_POINTS, RuntimeConfig


@dataclass(frozen=True)
class MeshTrackerConfig:
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    detect_every: int = 10  # re-detect a tracked face every N frames; lost and new faces detect at once
    presence_threshold: float = 0.5  # FaceMesh face-presence probability below this = face lost
    detection_threshold: float = 0.5  # BlazeFace score for a detection to count
    refine_eyes: bool = True  # eyelids and irises from the eye network (FaceMesh alone barely sees blinks)
    # Run the eye network on a stream every N-th frame (staggered across streams); in between its last
    # correction of the eye vertices rides on the fresh mesh. The network costs ~2x FaceMesh on a CPU.
    eyes_every: int = 1
    follow: FollowConfig = field(default_factory=FollowConfig)


_stream_numbers = itertools.count()
SETTLE_PASSES = 6  # at most this many extra mesh reads of a newly found face (see MeshLandmarkStage._settle)
SETTLE_PX = 0.25  # ... stopping once its points move less than this between two reads


@dataclass
class MeshTrackState:
    """Per-stream tracking state."""

    mesh: np.ndarray | None = None  # (468, 3) last points in frame pixels (x, y, z), None when lost
    landmarks: np.ndarray | None = None  # (68, 2) float32, the same face in the iBUG convention
    iris: np.ndarray | None = None  # (2, 5, 2) float32 iris centre + 4 edge points, subject's right eye first
    frames_since_detect: int = 0
    eye_correction: np.ndarray | None = None  # (468, 2) refined - raw mesh x, y at the last eye-network frame
    frames_tracked: int = 0
    eye_phase: int = field(default_factory=_stream_numbers.__next__)  # staggers streams' eye-network frames
    followed_box: np.ndarray | None = None  # (4,) where the followed person's face was last seen; kept when lost
    frames_lost: int = 0  # frames in a row without the followed face
    unconfirmed: int = 0  # re-detections in a row that saw faces, none at the tracked one
    person: int = 0  # which person this stream follows: +1 each time a new one is taken (1 = the first)


class MeshLandmarkStage:
    """Landmarks for a batch of frames from many streams (with the torch engine: one detector and one mesh call
    per batch)."""

    def __init__(self, config: MeshTrackerConfig = MeshTrackerConfig()) -> None:
        self.config = config
        self.engine = landmark_engine(config.runtime, DetectionConfig(score_threshold=config.detection_threshold),
                                      config.refine_eyes)
        # Compare logits, not probabilities: sigmoid saturates in float32 far from 0.
        self.presence_logit = float(np.log(config.presence_threshold / (1 - config.presence_threshold)))
        # The server tracks live frames and prepares target photos on two threads; torch's CPU thread count,
        # which track() sets and restores, is process-wide, and an engine runs one call at a time.
        self._lock = threading.Lock()

    def track(self, frames: list[np.ndarray], states: list[MeshTrackState],
              timings: dict[str, float] | None = None) -> list[np.ndarray | None]:
        """RGB uint8 frames (any sizes), one state per frame -> (68, 2) float32 landmarks or None per frame.

        Updates the states; adds "detect" and "landmarks" wall times to `timings` if given. A state may come
        more than once (consecutive frames of one stream): its frames then go in order, one per batch."""
        if len(frames) != len(states):
            raise ValueError("one state per frame")
        results: list[np.ndarray | None] = [None] * len(frames)
        with self._lock, self._threads():
            for batch in _rounds(states):
                found = self._track_batch([frames[i] for i in batch], [states[i] for i in batch], timings)
                for index, points in zip(batch, found, strict=True):
                    results[index] = points
        return results

    @contextlib.contextmanager
    def _threads(self) -> Iterator[None]:
        threads = self.config.runtime.cpu_threads
        if self.config.runtime.device != "cpu" or threads <= 0:
            yield
            return
        # Both counts are process-wide, so put back for the generator. OpenCV's: its pool splits even a 64x64
        # warpAffine and then spins, which cost 2.7 of 13 ms CPU per frame of the litert engine (same wall time).
        previous, previous_cv2 = torch.get_num_threads(), cv2.getNumThreads()
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)
            cv2.setNumThreads(previous_cv2)

    def _track_batch(self, frames: list[np.ndarray], states: list[MeshTrackState],
                     timings: dict[str, float] | None) -> list[np.ndarray | None]:
        start = time.perf_counter()
        loaded = self.engine.load(frames)
        wanted = [i for i, state in enumerate(states)
                  if state.mesh is None or state.frames_since_detect >= self.config.detect_every]
        detected = self._detect(loaded, states, wanted)
        middle = time.perf_counter()
        results = self._mesh(loaded, states, detected, set(wanted))
        if timings is not None:
            timings["detect"] = timings.get("detect", 0.0) + middle - start
            timings["landmarks"] = timings.get("landmarks", 0.0) + time.perf_counter() - middle
        return results

    def _detect(self, frames: list, states: list[MeshTrackState], wanted: list[int]) -> dict[int, FaceRois]:
        """Detect in the `wanted` frames -> the ROIs to use there instead of the tracked ones."""
        if not wanted:
            return {}
        found = self.engine.detect(frames, wanted)
        boxes, valid = found.boxes, found.valid
        chosen = {}
        for row, index in enumerate(wanted):
            state = states[index]
            state.frames_since_detect = 0
            faces = np.flatnonzero(valid[row])
            if state.mesh is not None:  # tracked: presence decides, no other face takes over
                followed = box_of(state.mesh)
                seen = any(matches(boxes[row, k], followed, self.config.follow) for k in faces)
                state.unconfirmed = 0 if seen or not len(faces) else state.unconfirmed + 1
                if state.unconfirmed >= self.config.follow.max_unconfirmed:  # stuck on something else: lose it
                    _lose(state)
                    state.unconfirmed = 0
                continue
            best = pick(boxes[row, faces], state.followed_box, self.config.follow)
            if best is None:
                continue  # lost and the followed face is not back: hold
            k = int(faces[best])
            if state.followed_box is None:
                state.person += 1  # a new stream, or the followed person left long ago
            chosen[index] = rois_from_detection(found.boxes[row, k:k + 1], found.keypoints[row, k:k + 1])
        return chosen

    def _mesh(self, frames: list, states: list[MeshTrackState], detected: dict[int, FaceRois],
              searched: set[int]) -> list[np.ndarray | None]:
        tracked = [i for i, state in enumerate(states) if state.mesh is not None and i not in detected]
        order = list(detected) + tracked
        results: list[np.ndarray | None] = [None] * len(states)
        for i in set(range(len(states))) - set(order):  # lost and not found again
            _lose(states[i])
            self._count_lost(states[i])
        if not order:
            return results
        rois = [self._settle(frames, list(detected), FaceRois.cat(list(detected.values())))] if detected else []
        if tracked:
            rois.append(rois_from_landmarks(np.stack([states[i].mesh for i in tracked])))
        raw, logits = self.engine.mesh(frames, order, FaceRois.cat(rois))
        present = ((logits > self.presence_logit) & np.isfinite(raw).all(axis=(1, 2))).tolist()
        due = [keep and (states[index].eye_correction is None
                         or (states[index].frames_tracked + states[index].eye_phase) % self.config.eyes_every == 0)
               for keep, index in zip(present, order, strict=True)]
        meshes, iris = self._refine_eyes(frames, order, raw, due)
        if self.config.refine_eyes:
            meshes = self._hold_eye_corrections(meshes, raw, [states[index] for index in order], present, due, iris)
        landmarks = to_ibug68(meshes, refined_eyes=self.config.refine_eyes).astype(np.float32)
        for row, index in enumerate(order):
            state = states[index]
            if not present[row]:
                _lose(state)
                self._count_lost(state)
                continue
            state.frames_lost = 0
            state.followed_box = box_of(meshes[row])
            if index not in searched:
                state.frames_since_detect += 1
            state.mesh = meshes[row].astype(np.float32)
            state.landmarks = landmarks[row]
            state.frames_tracked += 1
            results[index] = landmarks[row]
        return results

    def _settle(self, frames: list, order: list[int], rois: FaceRois) -> FaceRois:
        """The ROIs a newly found face's mesh should be read in: where tracking would put them.

        A detector box is not where tracking crops the face: from it the landmarks crept for ~6 frames (2-4 px
        on the evaluation set's clips) before they settled, so a caller holding still seemed to move, and the
        calibration frame (the first face seen) was not the face at rest. The mesh is read again on the same
        frame from its own landmarks until it moves less than SETTLE_PX (a few extra mesh calls per new face)."""
        previous = None
        for _ in range(SETTLE_PASSES):
            raw, _ = self.engine.mesh(frames, order, rois)
            if not np.isfinite(raw).all():
                break  # no face there after all: the detection's ROIs decide (and the face is lost)
            meshes, _ = self._refine_eyes(frames, order, raw, [True] * len(order))  # what tracking reads ROIs from
            if previous is not None and np.abs(meshes[..., :2] - previous).max() < SETTLE_PX:
                break
            previous = meshes[..., :2]
            rois = rois_from_landmarks(meshes)
        return rois

    def _count_lost(self, state: MeshTrackState) -> None:
        state.frames_lost += 1
        if state.frames_lost > self.config.follow.forget_after:
            state.followed_box = None  # gone for good: the next face found is a new person

    @staticmethod
    def _hold_eye_corrections(meshes: np.ndarray, raw: np.ndarray, states: list[MeshTrackState],
                              present: list[bool], due: list[bool], iris: np.ndarray | None) -> np.ndarray:
        """Faces whose eyes were refined now keep that correction; the others get their last one back (and
        keep their last irises), so their lids do not fall back to FaceMesh's for the frames in between."""
        for row, state in enumerate(states):
            if not present[row]:
                continue
            if due[row] and iris is not None:
                state.eye_correction = meshes[row, :, :2] - raw[row, :, :2]
                state.iris = iris[row]
            elif state.eye_correction is not None:
                meshes[row, :, :2] = raw[row, :, :2] + state.eye_correction
        return meshes

    def _refine_eyes(self, frames: list, order: list[int], meshes: np.ndarray,
                     due: list[bool]) -> tuple[np.ndarray, np.ndarray | None]:
        """Meshes (N, 468, 3) with the eye network's eyelids, and irises (N, 2, 5, 2), for the faces due."""
        rows = [row for row, keep in enumerate(due) if keep]
        if not self.config.refine_eyes or not rows:
            return meshes.copy(), None
        rois, mirrored = eye_rois(meshes[rows])
        points = self.engine.eyes(frames, [order[row] for row in rows for _ in range(2)], rois, mirrored)
        points = points.reshape(len(rows), 2, -1, 3)
        refined = meshes.copy()
        refined[rows] = refine_mesh(meshes[rows], points[:, :, :EYE_POINTS])
        iris = np.zeros((len(meshes), 2, IRIS_POINTS, 2), np.float32)
        iris[rows] = points[:, :, EYE_POINTS:, :2]
        return refined, iris


def _lose(state: MeshTrackState) -> None:
    state.mesh = state.landmarks = state.iris = state.eye_correction = None


def _rounds(states: list[MeshTrackState]) -> list[list[int]]:
    """Split indices into batches in which every state appears at most once, keeping each state's order."""
    rounds: list[list[int]] = []
    seen: dict[int, int] = {}  # id(state) -> how many of its frames are placed
    for index, state in enumerate(states):
        turn = seen.get(id(state), 0)
        seen[id(state)] = turn + 1
        if turn == len(rounds):
            rounds.append([])
        rounds[turn].append(index)
    return rounds


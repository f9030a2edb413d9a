"""Driver landmark sources behind one small interface: the pipeline asks for each session's 68 points, the
source keeps its tracking state on the session's DriverState.

- mesh: BlazeFace + FaceMesh (+ the eye network) for the frames of all sessions: LiteRT on the CPU, or the torch
  port (one batched call, GPU-capable) or its ONNX export;
- dlib: HOG + shape predictor, one tracker per session, CPU.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

import numpy as np

from models.config import LandmarkSettings, resolve_device, resolve_landmark_runtime
from models.landmarks import FaceTracker

if TYPE_CHECKING:  # the mesh stage needs torch; the dlib source does not import it
    from models.facemesh.tracker import MeshLandmarkStage, MeshTrackState
    from models.pipeline import DriverState

log = logging.getLogger(__name__)


class LandmarkSource(Protocol):
    def attach(self, driver: DriverState) -> None:
        """Give a new session its tracking state."""

    def track(self, drivers: list[DriverState], frames: list[np.ndarray],
              timings: dict[str, float]) -> list[np.ndarray | None]:
        """Each session's (68, 2) landmarks on its frame, None where no face is found; adds to "detect" and
        "landmarks" in `timings`. Never raises for one bad frame: other sessions share the batch."""


class DlibSource:
    def __init__(self, settings: LandmarkSettings) -> None:
        self.detect_every = settings.detect_every

    def attach(self, driver: DriverState) -> None:
        driver.tracker = FaceTracker(detect_every=self.detect_every)

    def track(self, drivers: list[DriverState], frames: list[np.ndarray],
              timings: dict[str, float]) -> list[np.ndarray | None]:
        found: list[np.ndarray | None] = []
        for driver, frame in zip(drivers, frames, strict=True):
            if driver.tracker is None:
                self.attach(driver)
            try:
                found.append(driver.tracker.update(frame, timings))
            except Exception:  # a malformed frame must not take the batch (other sessions) down
                driver.tracker.landmarks = None
                found.append(None)
        return found


class MeshSource:
    def __init__(self, settings: LandmarkSettings) -> None:
        self.settings = settings
        self._stage: MeshLandmarkStage | None = None

    @property
    def stage(self) -> MeshLandmarkStage:
        """The batched FaceMesh stage, built on first use (generators without landmarks never need it)."""
        if self._stage is None:
            from models.facemesh.networks import RuntimeConfig
            from models.facemesh.tracker import MeshLandmarkStage, MeshTrackerConfig

            device = resolve_device(self.settings.device)
            runtime = RuntimeConfig(runtime=resolve_landmark_runtime(self.settings.landmark_runtime, device),
                                    device=device)
            self._stage = MeshLandmarkStage(MeshTrackerConfig(runtime, detect_every=self.settings.detect_every,
                                                              refine_eyes=self.settings.refine_eyes,
                                                              eyes_every=self.settings.eyes_every))
        return self._stage

    def attach(self, driver: DriverState) -> None:
        driver.mesh = new_mesh_state()

    def track(self, drivers: list[DriverState], frames: list[np.ndarray],
              timings: dict[str, float]) -> list[np.ndarray | None]:
        for driver in drivers:
            if driver.mesh is None:
                self.attach(driver)
        states = [driver.mesh for driver in drivers]
        try:
            return self.stage.track(frames, states, timings)
        except Exception:  # frames are checked already, so this is a bug or the device: keep serving, say so
            log.exception("mesh landmarks failed for a batch of %d frames", len(states))
            for state in states:
                state.mesh = state.landmarks = None
            return [None] * len(states)


def new_mesh_state() -> MeshTrackState:
    from models.facemesh.tracker import MeshTrackState

    return MeshTrackState()


SOURCES: dict[str, type[DlibSource] | type[MeshSource]] = {"mesh": MeshSource, "dlib": DlibSource}


def landmark_source(settings: LandmarkSettings) -> LandmarkSource:
    return SOURCES[settings.landmarks](settings)

"""The reenactment pipeline: the one interface the server and the offline CLI use.

CONTRACT (the server depends on exactly this; keep it stable):

    pipeline = ReenactmentPipeline(PipelineConfig(generator="mesh", output_size=256))  # options: models.config
    target = pipeline.prepare_target([rgb_photo, ...])   # raises NoFaceError; the subject's face (face_choice)
    target = pipeline.prepare_target([photo], faces=[2])  # or the caller's pick (FaceIndexError past the last)
    driver = pipeline.new_driver()                        # per-session mutable state
    pipeline.request_calibration(driver)                  # next frame with a face sets neutral
    results = pipeline.process([FrameJob(driver, target, rgb_frame), ...])  # batched, blocking

`process` is called from a worker thread (never the event loop) with frames from many
sessions at once; each result is an RGB uint8 (output_size, output_size, 3) image.
A driver frame without a face gives the session's last good output (or the target at rest)
with face_found=False; it never raises for that.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.align import align_face, crop_matrix
from models.config import (
    LANDMARK_RUNTIMES,
    LANDMARK_SOURCES,
    TRANSFORMERS,
    GeneratorSettings,
    LandmarkSettings,
    TransformerSettings,
    resolve_device,
)
from models.face_choice import FaceChoice, FaceIndexError, choose_face
from models.generators import GENERATOR_NAMES, generator_class
from models.generators.base import GenerateRequest
from models.landmark_sources import MeshSource, landmark_source, new_mesh_state
from models.landmarks import (
    LandmarkTracker,
    box_from_landmarks,
    face_size,
    landmarks_in_box,
    to_gray,
)
from models.mesh3d.caller_range import MouthRange
from models.mesh3d.transfer import eye_openness, mouth_openness, with_mouth_of
from models.photo_check import PhotoCheck, check_photo
from models.smoothing import OneEuroFilter
from models.transformer import LandmarkTransformer, TransformerConfig
from options import option, section

if TYPE_CHECKING:  # the mesh tracker needs torch; the dlib path does not import it
    from models.facemesh.tracker import MeshLandmarkStage, MeshTrackState

GENERATORS = GENERATOR_NAMES
EYE_HISTORY = 300  # frames (10 s at 30 fps) of eye openness kept per session
EYE_HISTORY_MIN = 15
EYE_OPEN_PERCENTILE = 80
# A neutral face whose mouth (mouth_openness) is this much wider than the caller's closed mouth was calibrated
# mid-word (a closed mouth's 5th percentile reads ~0.03 on the set's clips, talking openings 0.2-0.5) ...
NEUTRAL_MOUTH_MARGIN = 0.05
CLOSED_MOUTH_TOLERANCE = 0.01  # ... and a frame within this of the closed mouth replaces its expression
__all__ = ["GENERATORS", "LANDMARK_RUNTIMES", "LANDMARK_SOURCES", "TRANSFORMERS", "FaceIndexError", "FrameJob",
           "NoFaceError", "PipelineConfig", "ReenactmentPipeline", "TargetPhoto"]


class NoFaceError(ValueError):
    """Raised by prepare_target when a photo has no detectable face; `index` says which of the photos."""

    def __init__(self, message: str = "no face found in the photo", index: int = 0) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True, kw_only=True)
class PipelineConfig(TransformerSettings, LandmarkSettings, GeneratorSettings):
    """Every stage's section (models.config) and the choice of generator; the server, models.reenact and
    evaluation.evaluate all take these options."""

    generator: str = option("mesh", "reenactment generator (mesh: the 3-D face-mesh one, the default since its "
                            "evaluation beats warp, see docs/mesh_generator.md)", choices=GENERATOR_NAMES)


@dataclass(frozen=True)
class TargetPhoto:
    """What preparing one photo found: its faces and the one used, and what the avatar will lack."""

    size: tuple[int, int]  # the photo's width, height
    choice: FaceChoice
    check: PhotoCheck


@dataclass
class TargetFace:
    """Target side, computed once per target choice (K photos for few-shot)."""

    images: list[np.ndarray]  # K aligned RGB crops, (output_size, output_size, 3) uint8
    landmarks: list[np.ndarray]  # K (68, 2) float32, in crop pixel coordinates
    extra: dict = field(default_factory=dict)  # generator-specific cache
    photos: list[TargetPhoto] = field(default_factory=list)  # K: the faces found and each photo's check


@dataclass
class DriverState:
    """Per-session driver state: tracking, calibration, last good output."""

    tracker: LandmarkTracker | None = None  # dlib landmarks: per-session tracker
    mesh: MeshTrackState | None = None  # mesh landmarks: per-session state for the shared batched stage
    smoother: OneEuroFilter = field(default_factory=OneEuroFilter)
    neutral: np.ndarray | None = None  # (68, 2) driver landmarks at rest
    mesh_smoother: OneEuroFilter = field(default_factory=OneEuroFilter)
    current_mesh: np.ndarray | None = None  # (468, 3) smoothed driver mesh of the frame being rendered
    neutral_mesh: np.ndarray | None = None  # (468, 3) driver mesh at rest (calibrated with `neutral`)
    eye_history: deque = field(default_factory=lambda: deque(maxlen=EYE_HISTORY))  # recent eye openness (2,)
    open_eyes: np.ndarray | None = None  # (2,) the driver's eye openness when open (see _update_open_eyes)
    mouth_range: MouthRange = field(default_factory=MouthRange)  # the caller's own range of mouth openings
    calibrate_next: bool = True  # the first face seen becomes the neutral face
    person: int = 0  # the tracked person the neutral face belongs to (MeshTrackState.person)
    last_output: np.ndarray | None = None
    last_output_target: TargetFace | None = None  # the target last_output shows: held only for that target

    @property
    def landmarks(self) -> np.ndarray | None:
        """The last (68, 2) landmarks tracked for this session, None when none (or the face was lost)."""
        source = self.mesh if self.mesh is not None else self.tracker
        return source.landmarks if source is not None else None


@dataclass
class FrameJob:
    driver: DriverState
    target: TargetFace
    frame: np.ndarray  # RGB uint8 driver frame, any size
    # When the frame was taken, in seconds on the driver's own clock (a video's frame time offline); None = now.
    # Smoothing runs on it, so an offline run gives the same avatar however fast the machine is.
    timestamp: float | None = None


@dataclass
class FrameResult:
    image: np.ndarray  # RGB uint8 (output_size, output_size, 3)
    face_found: bool
    stage_seconds: dict[str, float]  # wall time per stage for this batch, e.g. {"landmarks": .004}
    driven: np.ndarray | None = None  # the transformed driver landmarks the frame was rendered to


class ReenactmentPipeline:
    """Landmarks -> landmark transformer -> generator, over a batch of frames from many sessions."""

    def __init__(self, config: PipelineConfig) -> None:
        # Only the pipeline's own options (a caller may pass a larger config, e.g. the server's), device resolved.
        self.config = config = section(config, PipelineConfig, device=resolve_device(config.device))
        self.generator = generator_class(config.generator)(section(config, GeneratorSettings))
        self.transformer = build_transformer(config)
        if self.generator.needs_mesh and config.landmarks != "mesh":
            raise ValueError(f"--generator {config.generator} drives a 3-D face mesh: it needs --landmarks mesh")
        self.landmarks = landmark_source(section(config, LandmarkSettings))

    def prepare_target(self, photos: list[np.ndarray], faces: Sequence[int | None] = ()) -> TargetFace:
        """`faces[i]`: which face of photo i to use (an index into its faces, left to right); None or missing:
        the subject's, as models.face_choice scores them."""
        if not photos:
            raise ValueError("at least one target photo is needed")
        if len(faces) > len(photos):
            raise ValueError(f"{len(faces)} face choices for {len(photos)} photo(s): one per photo at most")
        rgb, choices, images, landmarks = [], [], [], []
        for index, raw in enumerate(photos):
            photo = as_rgb(raw)
            if photo is None:
                raise ValueError("a target photo is not an RGB image")
            # The still target keeps dlib whatever `landmarks` says: a one-off where accuracy beats speed, and
            # the target landmarks stay in the convention the transformer and generators were tuned on.
            try:
                choice = choose_face(photo, faces[index] if index < len(faces) else None, self._face_confirmer())
            except FaceIndexError as error:
                raise FaceIndexError(str(error), index=index) from error
            if choice is None:
                raise NoFaceError(index=index)
            crop, points = align_face(photo, choice.face.landmarks, self.config.output_size)
            # Re-fit the landmarks on the aligned crop: the predictor is most accurate on upright faces.
            refined = landmarks_in_box(to_gray(crop), box_from_landmarks(points))
            rgb.append(photo)
            choices.append(choice)
            images.append(crop)
            landmarks.append(refined)
        for image in images:
            image.setflags(write=False)  # shared by every session that picks this target
        target = TargetFace(images, landmarks)
        meshes: list[np.ndarray | None] = [None] * len(images)
        if self.generator.needs_mesh:
            meshes = [self._photo_mesh(image, index) for index, image in enumerate(images)]
            target.extra["generator"] = self.generator.prepare(images, landmarks, meshes)
        else:
            target.extra["generator"] = self.generator.prepare(images, landmarks)
        for photo, choice, image, points, mesh in zip(rgb, choices, images, landmarks, meshes, strict=True):
            matrix = crop_matrix(choice.face.landmarks, self.config.output_size)
            enlargement = float(np.hypot(matrix[0, 0], matrix[1, 0]))
            check = check_photo(photo, choice.face.landmarks, image, points, enlargement, mesh)
            target.photos.append(TargetPhoto((photo.shape[1], photo.shape[0]), choice, check))
        return target

    def _face_confirmer(self) -> Callable[[np.ndarray], bool] | None:
        """BlazeFace, where the mesh landmarks run, to confirm a weak HOG face (models.face_choice)."""
        if not isinstance(self.landmarks, MeshSource):
            return None

        def confirm(crop: np.ndarray) -> bool:
            state = new_mesh_state()
            self.mesh_stage.track([np.array(crop)], [state])
            return state.mesh is not None

        return confirm

    def _photo_mesh(self, image: np.ndarray, index: int) -> np.ndarray:
        """The 468-point mesh of a still photo: detected, then refined twice from its own previous mesh."""
        state = new_mesh_state()
        for _ in range(3):
            self.mesh_stage.track([np.array(image)], [state])  # torch wants a writable array
            if state.mesh is None:
                raise NoFaceError(index=index)
        return state.mesh

    def new_driver(self) -> DriverState:
        driver = DriverState()
        self.landmarks.attach(driver)
        return driver

    @property
    def mesh_stage(self) -> MeshLandmarkStage:
        """The batched FaceMesh stage of the mesh landmark source (target photos' meshes use it too)."""
        if not isinstance(self.landmarks, MeshSource):
            raise RuntimeError("the FaceMesh stage runs only with --landmarks mesh")
        return self.landmarks.stage

    def request_calibration(self, driver: DriverState) -> None:
        driver.calibrate_next = True
        driver.eye_history.clear()  # a new rest pose: the open-eye reference is learnt again
        driver.open_eyes = None
        driver.mouth_range.reset()

    def process(self, jobs: list[FrameJob]) -> list[FrameResult]:
        timings: dict[str, float] = {}
        frames = [as_rgb(job.frame) for job in jobs]
        if not self.generator.needs_landmarks:
            start = time.perf_counter()
            live = [i for i, frame in enumerate(frames) if frame is not None]
            images = self.generator.generate([_request(jobs[i], None, frames[i]) for i in live]) if live else []
            timings["generate"] = time.perf_counter() - start
            return self._results(jobs, dict(zip(live, images, strict=True)), [None] * len(jobs), timings)

        # "detect" and "landmarks" are summed inside the trackers; "transform" is smoothing + transformer.
        timings.update(detect=0.0, landmarks=0.0, transform=0.0)
        tracked = self._track(jobs, frames, timings)
        driven = [self._drive(job, points, timings) if frame is not None else None
                  for job, frame, points in zip(jobs, frames, tracked, strict=True)]

        start = time.perf_counter()
        live = [i for i, points in enumerate(driven) if points is not None]
        images = self.generator.generate([_request(jobs[i], driven[i], frames[i]) for i in live]) if live else []
        timings["generate"] = time.perf_counter() - start
        return self._results(jobs, dict(zip(live, images, strict=True)), driven, timings)

    @staticmethod
    def _results(jobs: list[FrameJob], rendered: dict[int, np.ndarray], driven: list[np.ndarray | None],
                 timings: dict[str, float]) -> list[FrameResult]:
        """Rendered frames become each session's last good output; the others hold it (or the target at rest),
        never a frame of the target the session showed before a switch."""
        results = []
        for index, job in enumerate(jobs):
            driver = job.driver
            if index in rendered:
                driver.last_output, driver.last_output_target = rendered[index], job.target
                results.append(FrameResult(rendered[index], True, timings, driven[index]))
            else:
                same_target = driver.last_output is not None and driver.last_output_target is job.target
                results.append(FrameResult(driver.last_output if same_target else job.target.images[0], False,
                                           timings))
        return results

    def _track(self, jobs: list[FrameJob], frames: list[np.ndarray | None],
               timings: dict[str, float]) -> list[np.ndarray | None]:
        """Each frame's driver landmarks (68, 2) or None (no frame, or no face on it)."""
        live = [i for i, frame in enumerate(frames) if frame is not None]
        found: list[np.ndarray | None] = [None] * len(jobs)
        points = self.landmarks.track([jobs[i].driver for i in live], [frames[i] for i in live], timings)
        for i, found_points in zip(live, points, strict=True):
            found[i] = found_points
        return found

    def _drive(self, job: FrameJob, points: np.ndarray | None, timings: dict[str, float]) -> np.ndarray | None:
        """Transform the driver's tracked motion onto the target's landmarks."""
        driver = job.driver
        start = time.perf_counter()
        try:
            if points is None:
                driver.smoother.reset()
                driver.mesh_smoother.reset()
                return None
            if driver.mesh is not None and driver.mesh.person != driver.person:
                # Another person drives now (the followed one left long ago): their own neutral face, or the
                # difference between two people would read as a head turn.
                driver.person = driver.mesh.person
                self.request_calibration(driver)
            now = job.timestamp if job.timestamp is not None else time.monotonic()
            scale = face_size(points)
            points = driver.smoother(points, now, scale=scale)
            mesh = driver.mesh.mesh if driver.mesh is not None else None
            driver.current_mesh = driver.mesh_smoother(mesh, now, scale=scale) if mesh is not None else None
            if driver.calibrate_next or driver.neutral is None:
                driver.neutral = points.copy()
                driver.neutral_mesh = driver.current_mesh
                driver.calibrate_next = False
            if driver.current_mesh is not None:
                _update_open_eyes(driver, eye_openness(driver.current_mesh))
                driver.mouth_range.update(mouth_openness(driver.current_mesh))
                _close_the_neutral_mouth(driver)
            return self.transformer.transform(points, driver.neutral, job.target.landmarks[0])
        finally:
            timings["transform"] += time.perf_counter() - start


def build_transformer(config: TransformerSettings) -> LandmarkTransformer:
    settings = TransformerConfig(output_size=config.output_size)
    if config.transformer == "v0":
        return LandmarkTransformer(settings)
    from models.marionette.landmark_disentangle import (
        ExpressionModel,
        PCALandmarkTransformer,
        RegressorLandmarkTransformer,
    )

    model = ExpressionModel.load(Path(config.expression_model))
    if config.transformer == "pca":
        return PCALandmarkTransformer(settings, model)
    return RegressorLandmarkTransformer(settings, model)


def _request(job: FrameJob, driven: np.ndarray | None, frame: np.ndarray) -> GenerateRequest:
    return GenerateRequest(job.target.images, job.target.landmarks, job.target.extra.get("generator", {}),
                           driven, frame, job.driver.current_mesh, job.driver.neutral_mesh, job.driver.open_eyes,
                           job.driver.mouth_range.gain, job.driver.mouth_range.closed)


def _close_the_neutral_mouth(driver: DriverState) -> None:
    """A caller calibrated mid-word (their first frame shows an open mouth): the first later frame with their mouth
    closed lends the neutral its mouth and jaw (the pose and the eyes stay the calibrated ones). Read
    against an open-mouthed neutral, a closing mouth pushed the avatar's lips past each other and its mouth followed
    speech with r 0.0-0.3 on the evaluation set's webcam clips that start mid-word."""
    closed = driver.mouth_range.closed
    if closed is None or driver.neutral_mesh is None or driver.current_mesh is None:
        return
    if mouth_openness(driver.neutral_mesh) - closed < NEUTRAL_MOUTH_MARGIN:
        return
    if mouth_openness(driver.current_mesh) <= closed + CLOSED_MOUTH_TOLERANCE:
        driver.neutral_mesh = with_mouth_of(driver.neutral_mesh, driver.current_mesh)


def _update_open_eyes(driver: DriverState, openness: np.ndarray) -> None:
    """The driver's eyes when open: the highest 80th percentile of any 10 s so far. A percentile, so blinks do
    not count; never lowered, so seconds of crying or squinting do not become the new "open"; not the neutral
    face, which may have been calibrated while looking down. Until 15 frames are seen: None (the neutral's)."""
    driver.eye_history.append(openness)
    if len(driver.eye_history) < EYE_HISTORY_MIN:
        return
    recent = np.percentile(np.stack(driver.eye_history), EYE_OPEN_PERCENTILE, axis=0)
    driver.open_eyes = recent if driver.open_eyes is None else np.maximum(driver.open_eyes, recent)


def as_rgb(frame: object) -> np.ndarray | None:
    """The frame as contiguous RGB uint8 (gray and RGBA converted), or None when it is not an image."""
    if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or min(frame.shape[:2]) < 8:
        return None
    if frame.dtype != np.uint8:
        if not np.issubdtype(frame.dtype, np.number):
            return None
        frame = np.clip(np.nan_to_num(frame), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 4:
        frame = frame[:, :, :3]
    elif frame.shape[2] != 3:
        return None
    return np.ascontiguousarray(frame)

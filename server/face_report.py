"""The upload answer's account of each photo: the faces found (boxes, small JPEG crops), the one used, and what
the avatar will lack (models.photo_check), so that the caller can pick another face and knows what to expect."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from models.pipeline import TargetFace, TargetPhoto

CROP_PX = 96  # the picker's thumbnails: enough to tell faces apart, ~3 KB each
CROP_MARGIN = 0.3  # of the face box on each side: hair and chin help a person recognise the face
CROP_JPEG_QUALITY = 80


def target_report(target: TargetFace, photos: list[np.ndarray]) -> dict:
    """`photos` are the raw uploads `target` was prepared from (the crops are cut from them)."""
    several = len(photos) > 1
    reports = [photo_report(photo, found) for photo, found in zip(photos, target.photos, strict=True)]
    warnings = [f"photo {i + 1}: {w}" if several else w for i, report in enumerate(reports) for w in report["warnings"]]
    return {"photos": reports, "warnings": warnings, "choose": any(r["close_call"] for r in reports)}


def photo_report(photo: np.ndarray, found: TargetPhoto) -> dict:
    faces = [{**scored.as_dict(), "crop": face_crop_url(photo, scored.face.box)} for scored in found.choice.faces]
    check = found.check.as_dict()
    return {"size": list(found.size), "face": found.choice.chosen, "close_call": found.choice.close_call,
            "faces": faces, "warnings": check.pop("warnings"), "check": check}


def face_crop_url(photo: np.ndarray, box: tuple[float, float, float, float]) -> str:
    """A square JPEG of the face box with a margin, CROP_PX wide, as a data: URL."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top) * (1 + 2 * CROP_MARGIN)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    x0, y0 = round(centre_x - side / 2), round(centre_y - side / 2)
    size = max(1, round(side))
    square = np.zeros((size, size, 3), np.uint8)  # black where the margin runs past the photo's edge
    height, width = photo.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(width, x0 + size), min(height, y0 + size)
    if sx1 > sx0 and sy1 > sy0:
        square[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = photo[sy0:sy1, sx0:sx1]
    thumb = cv2.resize(square, (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(thumb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, CROP_JPEG_QUALITY])
    if not ok:
        raise ValueError("could not encode a face crop")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")

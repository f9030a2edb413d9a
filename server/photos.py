"""Decoding and validating uploaded target photos."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from server.errors import ApiError

MAX_PIXELS = 40_000_000  # decompression-bomb guard: a 40 MP photo is plenty for a face crop
MAX_SIDE = 2048  # larger photos are downscaled before face detection (detection cost grows with area)
_HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit (or 32-bit int) grayscale


def decode_photo(data: bytes, name: str = "photo") -> np.ndarray:
    """Return an RGB uint8 array, upright per EXIF, at most MAX_SIDE on its long side."""
    if not data:
        raise ApiError(400, f"{name}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise _too_large(name, image.width, image.height)
            image.load()
            upright = _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as error:  # PIL refuses it before we see its size: still "too large"
        raise ApiError(413, f"{name}: the image is too large (more than {MAX_PIXELS // 1_000_000} MP)") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ApiError(415, f"{name}: not a readable image (JPEG, PNG or WebP expected)") from error
    if max(upright.size) > MAX_SIDE:
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
    return np.asarray(upright, dtype=np.uint8).copy()


def _too_large(name: str, width: int, height: int) -> ApiError:
    return ApiError(413, f"{name}: the image is too large ({width}x{height} pixels, at most "
                         f"{MAX_PIXELS // 1_000_000} MP)")


def _to_rgb(image: Image.Image) -> Image.Image:
    """convert("RGB") clips 16-bit grayscale to white: scale it to 8 bits by its real range first."""
    if image.mode in _HIGH_DEPTH_MODES:
        values = np.asarray(image).astype(np.float64)
        peak = 65535.0 if values.max() > 255 or image.mode.startswith("I;16") else 255.0
        image = Image.fromarray(np.clip(values * (255.0 / peak), 0, 255).round().astype(np.uint8), "L")
    return image.convert("RGB")

"""Decoding and validating uploaded target photos."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from server.errors import ApiError

MAX_PIXELS = 40_000_000  # decompression-bomb guard: a 40 MP photo is plenty for a face crop
MAX_SIDE = 2048  # larger photos are downscaled before face detection (detection cost grows with area)


def decode_photo(data: bytes, name: str = "photo") -> np.ndarray:
    """Return an RGB uint8 array, upright per EXIF, at most MAX_SIDE on its long side."""
    if not data:
        raise ApiError(400, f"{name}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ApiError(413, f"{name}: the image is too large ({image.width}x{image.height} pixels)")
            image.load()
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as error:
        raise ApiError(415, f"{name}: not a readable image (JPEG, PNG or WebP expected)") from error
    if max(upright.size) > MAX_SIDE:
        upright.thumbnail((MAX_SIDE, MAX_SIDE))
    return np.asarray(upright, dtype=np.uint8).copy()

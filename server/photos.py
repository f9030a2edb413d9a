"""Decoding and validating uploaded target photos, within a pixel and a memory budget per decode."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from server.errors import ApiError

FORMATS = ("JPEG", "PNG", "WEBP")  # what cameras and browsers make; every other PIL decoder stays unreachable
MAX_PIXELS = 40_000_000  # decompression-bomb guard: a 40 MP photo is plenty for a face crop
# What one decode may allocate, estimated from the header before anything is decoded (the picture, plus the
# decoder's own buffers: a progressive JPEG's coefficients, libwebp's canvases). Baseline JPEGs up to MAX_PIXELS fit
# (decoded at 1/2..1/8 scale); so do 16 MP PNGs; a 6300x6300 16-bit PNG (77 KB of file) does not, where it once
# cost the server 1 GB. The peak of a decode is about 1.5 times this (the downscale's intermediate).
MAX_DECODE_BYTES = 64 * 1024 * 1024
MAX_SIDE = 2048  # larger photos are downscaled before face detection (detection cost grows with area)
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
_JPEG = ("JPEG", "MPO")  # PIL names a JPEG with a second (depth or stereo) picture MPO
_WEBP_COPIES = 4  # measured: decoding a WebP peaks at 3.9x its RGBA picture (libwebp canvases, a copy)


def decode_photo(data: bytes, label: str = "photo 1") -> np.ndarray:
    """Return an RGB uint8 array, upright per EXIF, at most MAX_SIDE on its long side. `label` names the photo
    in error messages by its position ("photo 2"): the client's file name is never repeated."""
    if not data:
        raise ApiError(400, f"{label}: the file is empty")
    try:
        # No `with`: the full-size picture must go as soon as it is downscaled, before the conversions.
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        if image.width * image.height > MAX_PIXELS:
            raise _too_large(label, f"{image.width}x{image.height} pixels, at most {MAX_PIXELS // 1_000_000} MP")
        size = image.size
        if (needed := _plan_decode(image)) > MAX_DECODE_BYTES:
            raise _too_large(label, f"{size[0]}x{size[1]} {image.mode} pixels take {needed // 2**20} MB to "
                                    f"decode, at most {MAX_DECODE_BYTES // 2**20} MB")
        image.load()
        image = _reduced(image)
        upright = _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as error:  # PIL refuses it before we see its size: still "too large"
        raise _too_large(label, f"more than {MAX_PIXELS // 1_000_000} MP") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ApiError(415, f"{label}: not a readable image (JPEG, PNG or WebP expected)") from error
    return np.asarray(upright, dtype=np.uint8).copy()


def _plan_decode(image: ImageFile.ImageFile) -> int:
    """Bytes decoding `image` will allocate. A JPEG is first set to decode at 1/2, 1/4 or 1/8 scale (draft):
    the least that still leaves MAX_SIDE on its long side, or more while it would not fit the budget."""
    if image.format not in _JPEG:
        return _picture_bytes(image.mode, image.size) * (_WEBP_COPIES if image.format == "WEBP" else 1)
    coefficients = _progressive_coefficient_bytes(image)
    scale = 1
    while scale < 8 and (max(image.size) // (2 * scale) >= MAX_SIDE or
                         _picture_bytes(image.mode, _scaled(image.size, scale)) + coefficients > MAX_DECODE_BYTES):
        scale *= 2
    if scale > 1:
        image.draft(image.mode, (max(1, image.width // scale), max(1, image.height // scale)))
    return _picture_bytes(image.mode, image.size) + coefficients  # the size draft actually chose


def _picture_bytes(mode: str, size: tuple[int, int]) -> int:
    """PIL stores one byte a pixel for 1/L/P, two for 16-bit gray, four for every other mode (RGB is padded)."""
    per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode in _SIXTEEN_BIT else 4
    return size[0] * size[1] * per_pixel


def _progressive_coefficient_bytes(image: ImageFile.ImageFile) -> int:
    """A progressive JPEG is decoded from all its DCT coefficients at once (two bytes a sample, full size at any
    draft scale); a baseline one streams them."""
    if not image.info.get("progressive"):
        return 0
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
    h_max, v_max = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    return sum(2 * math.ceil(image.width * h / h_max) * math.ceil(image.height * v / v_max) for _, h, v, _ in layers)


def _scaled(size: tuple[int, int], scale: int) -> tuple[int, int]:
    return math.ceil(size[0] / scale), math.ceil(size[1] / scale)


def _too_large(label: str, detail: str) -> ApiError:
    return ApiError(413, f"{label}: the image is too large ({detail})")


def _fit(size: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down (never up) to MAX_SIDE on its long side, keeping the aspect ratio."""
    scale = min(1.0, MAX_SIDE / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _reduced(image: Image.Image) -> Image.Image:
    """Downscaled first, converted after: every later step works on at most MAX_SIDE x MAX_SIDE pixels. BOX
    (area averaging) resizes every mode, 16-bit gray included (Image.reduce does not)."""
    if max(image.size) <= MAX_SIDE:
        return image
    return image.resize(_fit(image.size), Image.Resampling.BOX)


def _to_rgb(image: Image.Image) -> Image.Image:
    """convert("RGB") clips 16-bit (and 32-bit int) gray to white: scale it to 8 bits by its range first, in
    integers (the image is already reduced, so the temporaries stay small)."""
    if image.mode in _SIXTEEN_BIT or image.mode == "I":
        values = np.asarray(image).astype(np.int32)
        if image.mode in _SIXTEEN_BIT or values.max() > 255:
            values = (np.clip(values, 0, 65535) + 128) // 257  # 0..65535 to 0..255, rounded
        image = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")

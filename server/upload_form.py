"""Reading an upload form (POST /api/targets, multipart/form-data): `photo` parts, bounded in number and in bytes,
each decoded as it arrives, and at most one short `face` part (which face of each photo to use). Any other part is
refused on its headers, before its body is read; photos are named by position ("photo 2"), never by the client's
file name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from server.errors import ApiError
from server.http_input import quoted

FIELD = "photo"
FACE_FIELD = "face"  # e.g. "2" (photo 1's face 2) or "auto,1" (photo 2's face 1): indices as the answer lists them
AUTO = "auto"
MAX_FACE_FIELD_BYTES = 256
HEADER_ALLOWANCE = 64 * 1024  # boundaries and part headers, on top of the photos' own bytes
CHUNK = 256 * 1024

Decode = Callable[[bytes, str], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class UploadForm:
    photos: list[np.ndarray]
    faces: tuple[int | None, ...]  # per photo, the face to use; None (or fewer entries than photos): the server's


async def read_photos(request: web.Request, max_photos: int, max_bytes: int, decode: Decode) -> UploadForm:
    """The decoded photos of the form and the faces asked for; 400 for a form that is not one, 413 past
    `max_photos` or `max_bytes`."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(400, f"upload photos as multipart/form-data in a field named {FIELD!r}")
    if request.content_length is not None and request.content_length > max_bytes + HEADER_ALLOWANCE:
        raise _too_large(max_bytes)  # said so up front: not a byte of it is read
    try:
        return await _read(await request.multipart(), max_photos, max_bytes, decode)
    except LineTooLong as error:  # aiohttp caps a part's header lines (8 KB): a very long file name, say
        raise ApiError(400, "the upload is not a well-formed multipart/form-data body (a part header line is too "
                            "long)") from error
    except (ValueError, HttpProcessingError) as error:  # aiohttp's word for a broken form (no boundary, say)
        raise ApiError(400, "the upload is not a well-formed multipart/form-data body") from error


async def _read(reader: MultipartReader, max_photos: int, max_bytes: int, decode: Decode) -> UploadForm:
    photos: list[np.ndarray] = []
    faces: tuple[int | None, ...] | None = None
    total = 0
    while (part := await reader.next()) is not None:
        label = f"{FIELD} {len(photos) + 1}"
        if not isinstance(part, BodyPartReader):  # aiohttp hands a multipart/* part over as a reader of its own
            raise ApiError(400, f"{label} is a nested multipart part: send each photo as a {FIELD!r} part")
        if part.name == FACE_FIELD:
            if faces is not None:
                raise ApiError(400, f"one {FACE_FIELD!r} field per upload (comma-separated, one entry per photo)")
            faces = _face_choices(await _read_small(part))
            continue
        if part.name != FIELD:
            name = "without a name" if part.name is None else quoted(part.name)
            raise ApiError(400, f"unexpected field {name}: photos go in fields named {FIELD!r} (and the face to "
                                f"use in {FACE_FIELD!r})")
        if len(photos) >= max_photos:
            raise ApiError(413, f"at most {max_photos} photos per upload")
        data = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise _too_large(max_bytes)
            data.extend(chunk)
        photos.append(await decode(bytes(data), label))
        del data
    if not photos:
        raise ApiError(400, f"no photo in the upload (multipart field {FIELD!r})")
    faces = faces or ()
    if len(faces) > len(photos):
        raise ApiError(400, f"{FACE_FIELD!r} names faces for {len(faces)} photos, but the upload has {len(photos)}")
    return UploadForm(photos, faces)


async def _read_small(part: BodyPartReader) -> str:
    data = bytearray()
    while chunk := await part.read_chunk(MAX_FACE_FIELD_BYTES + 1):
        data.extend(chunk)
        if len(data) > MAX_FACE_FIELD_BYTES:
            raise ApiError(400, f"the {FACE_FIELD!r} field is too long (at most {MAX_FACE_FIELD_BYTES} bytes)")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"the {FACE_FIELD!r} field must be face numbers, e.g. '2' or '{AUTO},1'") from error


def _face_choices(text: str) -> tuple[int | None, ...]:
    """"2" -> (2,); "auto,1" -> (None, 1): one entry per photo, in upload order."""
    choices: list[int | None] = []
    for entry in (item.strip() for item in text.split(",")):
        if entry in ("", AUTO):
            choices.append(None)
        elif entry.isdigit() and len(entry) <= 3:
            choices.append(int(entry))
        else:
            raise ApiError(400, f"the {FACE_FIELD!r} field must be face numbers, e.g. '2' or '{AUTO},1', not "
                                f"{quoted(entry)}")
    return tuple(choices)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {max_bytes / 2**20:.3g} MB")

"""Reading an upload form (POST /api/targets, multipart/form-data): only `photo` parts, bounded in number and in
bytes, each decoded as it arrives. Any other part is refused on its headers, before its body is read; photos are
named by position ("photo 2"), never by the client's file name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np
from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from server.errors import ApiError
from server.http_input import quoted

FIELD = "photo"
HEADER_ALLOWANCE = 64 * 1024  # boundaries and part headers, on top of the photos' own bytes
CHUNK = 256 * 1024

Decode = Callable[[bytes, str], Awaitable[np.ndarray]]


async def read_photos(request: web.Request, max_photos: int, max_bytes: int, decode: Decode) -> list[np.ndarray]:
    """The decoded photos of the form; 400 for a form that is not one, 413 past `max_photos` or `max_bytes`."""
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


async def _read(reader: MultipartReader, max_photos: int, max_bytes: int, decode: Decode) -> list[np.ndarray]:
    photos: list[np.ndarray] = []
    total = 0
    while (part := await reader.next()) is not None:
        label = f"{FIELD} {len(photos) + 1}"
        if not isinstance(part, BodyPartReader):  # aiohttp hands a multipart/* part over as a reader of its own
            raise ApiError(400, f"{label} is a nested multipart part: send each photo as a {FIELD!r} part")
        if part.name != FIELD:
            name = "without a name" if part.name is None else quoted(part.name)
            raise ApiError(400, f"unexpected field {name}: photos go in fields named {FIELD!r}")
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
    return photos


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"upload too large: the limit is {max_bytes / 2**20:.3g} MB")

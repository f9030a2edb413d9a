"""Target faces: the built-in gallery and uploaded photos, each prepared once and cached."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.assets import gallery
from models.pipeline import FaceIndexError, NoFaceError, TargetFace
from server.errors import ApiError
from server.face_report import target_report
from server.http_input import quoted
from server.session import PreparedTarget


@dataclass
class _Entry:
    id: str
    title: str
    credit: str
    load_photos: Callable[[], list[np.ndarray]]
    prepared: PreparedTarget | None = None


def _read_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


Prepare = Callable[[list[np.ndarray], Sequence[int | None]], TargetFace]


class TargetStore:
    """Gallery targets are prepared on first use; uploads are kept in a bounded LRU."""

    def __init__(self, prepare: Prepare,
                 executor: concurrent.futures.Executor, max_uploaded: int) -> None:
        self._prepare = prepare
        self._executor = executor
        self._max_uploaded = max_uploaded
        self._gallery: dict[str, _Entry] = {}
        for item in gallery():
            path = str(item.path)
            self._gallery[item.id] = _Entry(item.id, item.title, item.credit,
                                            lambda p=path: [_read_rgb(p)])
        self._uploads: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._lock = asyncio.Lock()

    def listing(self) -> list[dict]:
        return [
            {"id": e.id, "title": e.title, "credit": e.credit, "image_url": f"/api/targets/{e.id}/image"}
            for e in self._gallery.values()
        ]

    def _entry(self, target_id: str) -> _Entry:
        entry = self._gallery.get(target_id) or self._uploads.get(target_id)
        if entry is None:
            raise ApiError(404, f"unknown target {quoted(target_id)}; GET /api/targets lists them")
        if target_id in self._uploads:
            self._uploads.move_to_end(target_id)
        return entry

    async def get(self, target_id: str) -> PreparedTarget:
        entry = self._entry(target_id)
        async with self._lock:  # one preparation per target even when many sessions ask at once
            if entry.prepared is None:
                photos = entry.load_photos()
                face, _ = await self._run_prepare(photos, ())
                entry.prepared = PreparedTarget(entry.id, face)
        return entry.prepared

    async def add_upload(self, photos: list[np.ndarray],
                         faces: Sequence[int | None] = ()) -> tuple[PreparedTarget, dict]:
        """The new target, and the account of its photos (server.face_report) for the answer."""
        face, report = await self._run_prepare(photos, faces)
        target_id = "upload-" + secrets.token_urlsafe(9)
        title = "Your photo" if len(photos) == 1 else f"Your photos ({len(photos)})"
        # Only the prepared crops are kept: the raw photos (up to 8 x 2048 px) are not needed again.
        entry = _Entry(target_id, title, "uploaded", _prepared_only, PreparedTarget(target_id, face))
        self._uploads[target_id] = entry
        while len(self._uploads) > self._max_uploaded:
            self._uploads.popitem(last=False)
        return entry.prepared, report

    def describe(self, target: PreparedTarget) -> dict:
        entry = self._entry(target.id)
        return {"id": entry.id, "title": entry.title, "image_url": f"/api/targets/{entry.id}/image"}

    async def thumbnail_jpeg(self, target_id: str) -> bytes:
        target = await self.get(target_id)
        image = cv2.cvtColor(target.face.images[0], cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ApiError(500, "could not encode the target image")
        return encoded.tobytes()

    async def _run_prepare(self, photos: list[np.ndarray], faces: Sequence[int | None]) -> tuple[TargetFace, dict]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._prepare_and_report, photos, faces)
        except (NoFaceError, FaceIndexError) as error:
            if len(photos) == 1:
                raise ApiError(422, str(error)) from error
            # By position ("photo 2 of 3"): a client's file name is never repeated back.
            where = f"photo {error.index + 1} of {len(photos)}"
            raise ApiError(422, str(error).replace("the photo", where)) from error

    def _prepare_and_report(self, photos: list[np.ndarray], faces: Sequence[int | None]) -> tuple[TargetFace, dict]:
        """On the preparer thread: the face crops are cut while the raw photos are still at hand."""
        face = self._prepare(photos, faces)
        return face, target_report(face, photos)


def _prepared_only() -> list[np.ndarray]:
    raise RuntimeError("an uploaded target is prepared once; its photos are not kept")

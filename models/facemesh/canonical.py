"""MediaPipe's canonical 3-D face model: 468 vertices, texture coordinates, 898 triangles, Procrustes weights.

The model ships in the npm package `@mediapipe/face_mesh` (Apache-2.0) as
`geometry_pipeline_metadata_landmarks.binarypb` inside `face_mesh_solution_packed_assets.data`; set-up
fetches the tarball with `npm pack` (`models.asset_fetch.fetch_npm_member`) and this module parses the
protobuf (GeometryPipelineMetadata: canonical_mesh = 1, procrustes_landmark_basis = 2) with a small
wire-format reader, so no protobuf dependency is needed. The parsed arrays are cached as .npz.

Coordinates are MediaPipe's: centimetres, x to the subject's left (image right), y up, z towards the
camera. The triangles cover the eyes and the mouth (they span the lids and the lips), wound
counter-clockwise seen from the front in that y-up frame.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

import numpy as np

from models.asset_fetch import fetch_npm_member
from models.assets import CACHE_DIR

NPM_PACKAGE = "@mediapipe/face_mesh"
NPM_VERSION = "0.4.1657299874"
NPM_SHA256 = "c08a7e0742a326285da666cf81d77c8b6f3a181a2ee948cadaf166008e0d3bc7"
PACKED_ASSETS = "package/face_mesh_solution_packed_assets.data"
ASSETS_LOADER = "package/face_mesh_solution_packed_assets_loader.js"
METADATA_NAME = "geometry_pipeline_metadata_landmarks.binarypb"
CACHE_FILE = CACHE_DIR / "facemesh" / "canonical_face.npz"


@dataclass(frozen=True)
class CanonicalFace:
    vertices: np.ndarray  # (468, 3) float32, centimetres, y up, z towards the camera
    uv: np.ndarray  # (468, 2) float32 texture coordinates in [0, 1]
    triangles: np.ndarray  # (898, 3) int32 vertex indices
    procrustes_ids: np.ndarray  # (33,) int32: vertices that expression hardly moves
    procrustes_weights: np.ndarray  # (33,) float32
    mirror: np.ndarray  # (468,) int32: the vertex on the other side of the face (itself on the midline)

    def procrustes_weight_vector(self) -> np.ndarray:
        """(468,) weights, zero outside the Procrustes basis."""
        weights = np.zeros(len(self.vertices), np.float32)
        weights[self.procrustes_ids] = self.procrustes_weights
        return weights


def _varint(data: bytes, index: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, index


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one protobuf message: varints as int, the rest as raw bytes."""
    index, out = 0, []
    while index < len(data):
        key, index = _varint(data, index)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, index = _varint(data, index)
        elif wire == 2:
            length, index = _varint(data, index)
            value, index = data[index:index + length], index + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, index = data[index:index + width], index + width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out


def _packed_or_repeated(values: list[int | bytes], dtype: str) -> np.ndarray:
    """A repeated scalar field, whether the writer packed it (one bytes blob) or not."""
    if dtype == "varint":
        numbers: list[int] = []
        for value in values:
            if isinstance(value, int):
                numbers.append(value)
            else:
                index = 0
                while index < len(value):
                    number, index = _varint(value, index)
                    numbers.append(number)
        return np.array(numbers, np.int64)
    return np.concatenate([np.frombuffer(value, "<f4") for value in values if isinstance(value, bytes)])


def parse_metadata(data: bytes) -> CanonicalFace:
    """GeometryPipelineMetadata bytes -> the canonical face."""
    top = _fields(data)
    mesh = _fields(next(value for number, value in top if number == 1 and isinstance(value, bytes)))
    vertex_buffer = _packed_or_repeated([v for n, v in mesh if n == 3], "float").reshape(-1, 5)
    triangles = _packed_or_repeated([v for n, v in mesh if n == 4], "varint").reshape(-1, 3)
    ids, weights = [], []
    for number, value in top:
        if number == 2 and isinstance(value, bytes):
            entry = dict(_fields(value))
            ids.append(int(entry.get(1, 0)))
            weights.append(float(np.frombuffer(entry[2], "<f4")[0]) if 2 in entry else 0.0)
    vertices = vertex_buffer[:, :3].astype(np.float32)
    return CanonicalFace(vertices, vertex_buffer[:, 3:5].astype(np.float32), triangles.astype(np.int32),
                         np.array(ids, np.int32), np.array(weights, np.float32), _mirror_map(vertices))


def _mirror_map(vertices: np.ndarray) -> np.ndarray:
    """For each vertex, the nearest vertex to its reflection across the face's midline (x = 0)."""
    reflected = vertices * np.array([-1, 1, 1], np.float32)
    distances = np.linalg.norm(reflected[:, None] - vertices[None], axis=-1)
    return distances.argmin(axis=1).astype(np.int32)


def _metadata_range(loader_js: str) -> tuple[int, int]:
    """Byte range of the metadata file inside the packed assets, as the package's loader lists it."""
    match = re.search(r"loadPackage\((\{.*\})\);", loader_js)
    if match is None:
        raise ValueError("unexpected @mediapipe/face_mesh loader: no loadPackage({...}) call")
    for entry in json.loads(match.group(1))["files"]:
        if entry["filename"].endswith(METADATA_NAME):
            return int(entry["start"]), int(entry["end"])
    raise ValueError(f"{METADATA_NAME} is not listed in the @mediapipe/face_mesh package")


def fetch_canonical_face() -> None:
    """Fetch the npm tarball (once), cut the metadata out of the packed assets and cache the parsed model."""
    if CACHE_FILE.exists():
        return
    members = fetch_npm_member(NPM_PACKAGE, NPM_VERSION, NPM_SHA256, (ASSETS_LOADER, PACKED_ASSETS))
    start, end = _metadata_range(members[ASSETS_LOADER].decode())
    face = parse_metadata(members[PACKED_ASSETS][start:end])
    CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
    partial = CACHE_FILE.with_suffix(".partial.npz")
    np.savez(partial, vertices=face.vertices, uv=face.uv, triangles=face.triangles,
             procrustes_ids=face.procrustes_ids, procrustes_weights=face.procrustes_weights, mirror=face.mirror)
    partial.replace(CACHE_FILE)  # atomic: another process never reads half a file


@functools.cache
def canonical_face() -> CanonicalFace:
    """The canonical face model (fetched and parsed on first use, then read from the cache)."""
    fetch_canonical_face()
    with np.load(CACHE_FILE) as data:
        arrays = {name: data[name] for name in data.files}
    for array in arrays.values():
        array.setflags(write=False)  # shared by every session: immutable
    return CanonicalFace(**arrays)

"""Avatar rooms with three real aiortc participants over loopback."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.identity import cosine_similarity, face_embedding
from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, RejectedError, SyntheticPeer
from models.assets import gallery, sample_media
from tests.server.test_api import call, upload

ROOM_SIZE = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("rooms"), "--generator", "warp", "--admission", "cap",
                        "--room-size", str(ROOM_SIZE)) as running:
        yield running


def embedding_of(path: Path) -> np.ndarray:
    embedding = face_embedding(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    assert embedding is not None
    return embedding


def assert_tile_shows(frames: list[tuple[float, np.ndarray | None]], viewer_name: str, shown_name: str,
                      target_embeddings: dict[str, np.ndarray], driver_embedding: np.ndarray) -> None:
    """A tile plays and shows the target its sender chose (closest of all targets, closer than the driver)."""
    assert len(frames) >= 20, f"{viewer_name} got {len(frames)} frames of {shown_name}"
    checked = 0
    for _, image in [f for f in frames if f[1] is not None][10::10]:
        embedding = face_embedding(image)
        if embedding is None:
            continue
        checked += 1
        similarities = {n: cosine_similarity(embedding, e) for n, e in target_embeddings.items()}
        assert max(similarities, key=similarities.get) == shown_name
        assert similarities[shown_name] > cosine_similarity(embedding, driver_embedding)
    assert checked >= 2


def metric(server: RunningServer, name: str) -> float:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_three_participants_see_each_others_avatars(server: RunningServer, talking_face_frames) -> None:
    photo = sample_media("single_face.jpg")
    code, uploaded = upload(server, [("me.jpg", photo.read_bytes())])
    assert code == 201
    targets = {"ann": ("astronaut", gallery()[0].path), "bob": ("grace_hopper", gallery()[1].path),
               "cat": (uploaded["id"], photo)}
    target_embeddings = {name: embedding_of(path) for name, (_, path) in targets.items()}
    driver_embedding = face_embedding(talking_face_frames[0])
    code, room = call(server, "POST", "/api/rooms", b"{}", {"Content-Type": "application/json"})
    assert code == 201 and room["max_participants"] == ROOM_SIZE and len(room["room_id"]) >= 16

    async def scenario() -> None:
        peers = {}
        for name, (target_id, _) in targets.items():
            config = PeerConfig(url=server.url, target=target_id, fps=15, measure=False, room=room["room_id"],
                                room_tiles=ROOM_SIZE - 1, name=name, keep_frames=40)
            peers[name] = SyntheticPeer(talking_face_frames, config)
            await peers[name].connect()
        # The room is full now: a fourth caller is told so.
        extra = SyntheticPeer(talking_face_frames[:5], PeerConfig(url=server.url, room=room["room_id"],
                                                                  room_tiles=ROOM_SIZE - 1, measure=False))
        with pytest.raises(RejectedError) as rejected:
            await extra.connect()
        assert rejected.value.status == 409 and "room full" in rejected.value.message
        # Wait for every tile to have played 40 frames (kept) rather than a fixed time: a loaded machine is slow.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not all(
                len(viewer.stats.tile_frames.get(viewer.stats.tile_of(shown) or "", [])) >= 40
                for viewer_name, viewer in peers.items() for shown in targets if shown != viewer_name):
            await asyncio.sleep(0.5)
        assert metric(server, "marionette_room_participants") == 3
        assert metric(server, "marionette_relay_fanout") == 6  # each of 3 sees 2 others: 3 generations, 6 relays

        # Everyone sees the two others, each as the target they chose, not as the driver video.
        for viewer_name, viewer in peers.items():
            assert {p["name"] for p in viewer.stats.roster["participants"]} == set(targets)
            for shown_name in targets:
                if shown_name == viewer_name:
                    continue
                mid = viewer.stats.tile_of(shown_name)
                assert mid is not None, f"{viewer_name} has no tile for {shown_name}"
                assert_tile_shows(viewer.stats.tile_frames.get(mid, []), viewer_name, shown_name,
                                  target_embeddings, driver_embedding)

        # Cat leaves: the others' tile for her stops within a second or two, the roster drops her.
        cat_tile_at_ann = peers["ann"].stats.tile_of("cat")
        await peers["cat"].close()
        await asyncio.sleep(1.5)
        count = len(peers["ann"].stats.tile_frames[cat_tile_at_ann])
        await asyncio.sleep(1.5)
        assert len(peers["ann"].stats.tile_frames[cat_tile_at_ann]) == count
        for name in ("ann", "bob"):
            assert {p["name"] for p in peers[name].stats.roster["participants"]} == {"ann", "bob"}
        assert metric(server, "marionette_relay_fanout") == 2
        for name in ("ann", "bob"):
            await peers[name].close()

    asyncio.run(scenario())
    deadline = time.monotonic() + 5
    while metric(server, "marionette_rooms_open") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert metric(server, "marionette_rooms_open") == 0  # a room closes when empty
    code, error = call(server, "GET", f"/api/rooms/{room['room_id']}")
    assert code == 404 and "unknown or closed room" in error["error"]


def test_room_errors(server: RunningServer) -> None:
    code, error = call(server, "POST", "/api/rooms/nope/join", json.dumps({"sdp": "v=0", "type": "offer"}).encode(),
                       {"Content-Type": "application/json"})
    assert code == 404 and "unknown or closed room" in error["error"]
    code, room = call(server, "POST", "/api/rooms", b"{}", {"Content-Type": "application/json"})
    code, error = call(server, "POST", f"/api/rooms/{room['room_id']}/join",
                       json.dumps({"sdp": "v=0", "type": "offer", "name": 5}).encode(),
                       {"Content-Type": "application/json"})
    assert code == 400 and "name" in error["error"]
    try:
        urllib.request.urlopen(server.url + f"/api/rooms/{room['room_id']}", timeout=5).close()
    except urllib.error.HTTPError as error:  # pragma: no cover - the room must still be there
        raise AssertionError(error) from error

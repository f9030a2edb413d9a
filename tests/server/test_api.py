"""The HTTP API against a real server process: targets, uploads, sessions, and every kind of bad input."""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, RejectedError, SyntheticPeer
from models.assets import sample_media


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("api"), "--generator", "passthrough", "--max-sessions", "2",
                        "--admission", "cap",
                        "--max-upload-bytes", "600000", "--video-idle-timeout-s", "3") as running:
        yield running


def call(server: RunningServer, method: str, path: str, body: bytes | None = None,
         headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_json(server: RunningServer, path: str, payload: object, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return call(server, "POST", path, json.dumps(payload).encode(), headers)


def upload(server: RunningServer, files: list[tuple[str, bytes]], field: str = "photo") -> tuple[int, dict]:
    boundary = "----marionette-test"
    body = b""
    for name, data in files:
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return call(server, "POST", "/api/targets", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})


def jpeg_bytes(path: Path) -> bytes:
    return path.read_bytes()


def test_health_targets_and_thumbnails(server: RunningServer) -> None:
    health = server.get_json("/healthz")
    assert (health["status"], health["sessions"]) == ("ok", 0)
    assert health["tasks"] == {"frame-batcher": {"running": True, "restarts": 0},
                               "session-housekeeping": {"running": True, "restarts": 0}}
    targets = server.get_json("/api/targets")["targets"]
    assert {"astronaut", "grace_hopper"} <= {t["id"] for t in targets}
    with urllib.request.urlopen(server.url + targets[0]["image_url"], timeout=30) as response:
        image = Image.open(io.BytesIO(response.read()))
        assert image.format == "JPEG" and image.size == (256, 256)


def test_ice_servers_without_stun_or_turn_is_an_empty_list(server: RunningServer) -> None:
    # No --ice-servers, no --turn-urls: host candidates only, and nothing cached (TURN credentials expire).
    with urllib.request.urlopen(server.url + "/api/ice-servers", timeout=10) as response:
        assert json.loads(response.read()) == {"iceServers": []}
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("payload", "status", "words"), [
    ("not json", 400, "not valid JSON"),
    ([1, 2], 400, "JSON object"),
    ({"type": "offer"}, 400, "sdp"),
    ({"sdp": "v=0", "type": "answer"}, 400, "sdp"),
    ({"sdp": "v=0\r\n", "type": "offer", "size": 7}, 400, "size"),
    ({"sdp": "v=0\r\n", "type": "offer", "size": "big"}, 400, "size"),
    ({"sdp": "v=0\r\n", "type": "offer", "measure": "yes"}, 400, "measure"),
    ({"sdp": "v=0\r\n", "type": "offer", "target": "nobody"}, 404, "unknown target"),
    ({"sdp": "this is not SDP", "type": "offer"}, 400, "offer"),
])
def test_bad_offers_get_clear_errors(server: RunningServer, payload: object, status: int, words: str) -> None:
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    code, answer = call(server, "POST", "/api/offer", body, {"Content-Type": "application/json"})
    assert code == status
    assert words.lower() in answer["error"].lower()
    assert server.get_json("/healthz")["sessions"] == 0  # nothing leaked


def test_uploads(server: RunningServer) -> None:
    grace = Path("/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg")
    code, created = upload(server, [("grace.jpg", jpeg_bytes(grace))])
    assert code == 201 and created["id"].startswith("upload-")
    # Few-shot: several photos make one target.
    code, few = upload(server, [("a.jpg", jpeg_bytes(grace)), ("b.jpg", jpeg_bytes(sample_media("single_face.jpg")))])
    assert code == 201 and "2" in few["title"]
    # Several faces: accepted, the largest is used.
    code, _ = upload(server, [("group.jpg", jpeg_bytes(sample_media("multi_face.jpg")))])
    assert code == 201

    code, error = upload(server, [("landscape.jpg", jpeg_bytes(sample_media("free-mountain-vector-01.jpg")))])
    assert (code, error["error"]) == (422, "no face found in the photo")
    code, error = upload(server, [("notes.txt", b"hello, I am not a picture")])
    assert code == 415 and "not a readable image" in error["error"]
    code, error = upload(server, [("empty.jpg", b"")])
    assert code == 400 and "empty" in error["error"]
    big = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)).save(big, "PNG")
    code, error = upload(server, [("huge.png", big.getvalue())])
    assert code == 413 and "too large" in error["error"]
    code, error = upload(server, [("grace.jpg", jpeg_bytes(grace))], field="picture")
    assert code == 400 and "photo" in error["error"]
    code, error = post_json(server, "/api/targets", {"photo": "base64?"})
    assert code == 400 and "multipart" in error["error"]


def test_session_control_needs_the_right_token(server: RunningServer, talking_face_frames) -> None:
    async def scenario() -> None:
        async with SyntheticPeer(talking_face_frames[:30], PeerConfig(url=server.url, measure=False)) as peer:
            sid = peer.session_id
            code, error = post_json(server, f"/api/sessions/{sid}/calibrate", {})
            assert code == 401 and "missing" in error["error"]
            code, error = post_json(server, f"/api/sessions/{sid}/calibrate", {}, token="wrong")
            assert code == 401 and "wrong" in error["error"]
            code, error = post_json(server, "/api/sessions/nope/calibrate", {}, token=peer.token)
            assert code == 404
            code, error = post_json(server, f"/api/sessions/{sid}/target", {"target": "nobody"}, token=peer.token)
            assert code == 404
            code, error = post_json(server, f"/api/sessions/{sid}/target", {"who": 1}, token=peer.token)
            assert code == 400
            code, answer = post_json(server, f"/api/sessions/{sid}/target", {"target": "grace_hopper"},
                                     token=peer.token)
            assert code == 200 and answer["target"]["id"] == "grace_hopper"
            await asyncio.sleep(1.5)
            assert peer.stats.statuses and peer.stats.statuses[-1]["target"] == "grace_hopper"
            assert server.get_json("/healthz")["sessions"] == 1
        # The peer hung up with DELETE.
        assert server.get_json("/healthz")["sessions"] == 0

    asyncio.run(scenario())


def test_full_server_answers_503_and_dead_peers_are_reaped(server: RunningServer, talking_face_frames) -> None:
    async def scenario() -> None:
        config = PeerConfig(url=server.url, measure=False)
        first, second = SyntheticPeer(talking_face_frames[:10], config), SyntheticPeer(talking_face_frames[:10], config)
        await first.connect()
        await second.connect()
        with pytest.raises(RejectedError) as rejected:
            await SyntheticPeer(talking_face_frames[:10], config).connect()
        assert rejected.value.status == 503 and "server full" in rejected.value.message
        await first.close()
        # The second peer vanishes without hanging up; the server must notice and free its place.
        await second.close(hang_up=False)
        deadline = time.monotonic() + 10
        while server.get_json("/healthz")["sessions"] and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
        assert server.get_json("/healthz")["sessions"] == 0

    asyncio.run(scenario())


def test_silent_peer_is_closed_after_the_idle_timeout(server: RunningServer, talking_face_frames) -> None:
    """A peer whose camera stops (and that sends no pings) must not hold a session forever."""

    async def scenario() -> None:
        peer = SyntheticPeer(talking_face_frames[:10], PeerConfig(url=server.url, measure=False))
        await peer.connect()
        await asyncio.sleep(1.0)
        assert server.get_json("/healthz")["sessions"] == 1
        peer.stop_camera()  # no more video; the connection itself stays up
        started = time.monotonic()
        while server.get_json("/healthz")["sessions"] and time.monotonic() - started < 10:
            await asyncio.sleep(0.25)
        assert server.get_json("/healthz")["sessions"] == 0
        assert 2.5 < time.monotonic() - started < 6  # the server's --video-idle-timeout-s is 3
        await peer.close(hang_up=False)

    asyncio.run(scenario())

"""The bad-input catalogue, one row per request a careless or hostile client may send: every one gets a clear
status and message (never a 500, a traceback, a hang or an echo of the input) and leaks no session."""

from __future__ import annotations

import asyncio
import functools
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from PIL import Image

from loadtest.local_server import RunningServer, running_server
from models.assets import sample_media

GRACE = Path("/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg")
BOUNDARY = "----marionette-catalogue"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("bad"), "--generator", "passthrough", "--admission", "cap",
                        "--max-upload-bytes", "3000000") as running:
        yield running


@functools.cache
def offer_sdp(audio: bool = False, video: bool = True) -> str:
    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        if video:
            pc.addTransceiver("video", direction="sendrecv")
        if audio:
            pc.addTransceiver("audio", direction="sendrecv")
        pc.createDataChannel("status")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def offer(sdp: str, **extra: object) -> bytes:
    return json.dumps({"sdp": sdp, "type": "offer", **extra}).encode()


def multipart(*files: tuple[str, bytes]) -> bytes:
    body = b""
    for name, data in files:
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode).save(out, "PNG")
    return out.getvalue()


def grace_gray16() -> bytes:
    gray = cv2.cvtColor(cv2.imread(str(GRACE)), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    return png(gray)


def small_face_photo() -> bytes:
    """Grace Hopper's face ~60 px wide in an 817 px photo (the detector's 320 px first pass misses it)."""
    gray = cv2.cvtColor(cv2.imread(str(GRACE)), cv2.COLOR_BGR2GRAY)
    face = cv2.resize(gray, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    canvas = np.full((640, 817), 128, np.uint8)
    canvas[100:100 + face.shape[0], 300:300 + face.shape[1]] = face
    return cv2.imencode(".jpg", canvas)[1].tobytes()


def huge_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (30000, 30000)).save(out, "PNG")  # 900 MP, a few hundred KB
    return out.getvalue()


def no_fingerprint() -> bytes:
    return offer("\r\n".join(line for line in offer_sdp().split("\r\n") if not line.startswith("a=fingerprint")))


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: Callable[[], bytes]
    status: int
    words: str
    content_type: str = "application/json"


CATALOGUE = [
    Case("not JSON", "/api/offer", lambda: b"{not json", 400, "not valid JSON"),
    Case("not UTF-8", "/api/offer", lambda: b"\xff\xfe{}", 400, "not valid JSON"),
    Case("JSON list", "/api/offer", lambda: b"[1, 2]", 400, "JSON object"),
    Case("nested 30,000 deep", "/api/offer", lambda: b"[" * 30_000 + b"]" * 30_000, 400, "nested too deeply"),
    Case("body of 5 MB", "/api/offer", lambda: offer("v=0", target="x" * 5_000_000), 413, "too large"),
    Case("long unknown target", "/api/offer", lambda: offer(offer_sdp(), target="x" * 50_000), 404, "unknown target"),
    Case("answer, not offer", "/api/offer", lambda: json.dumps({"sdp": "v=0", "type": "answer"}).encode(), 400, "sdp"),
    Case("odd size", "/api/offer", lambda: offer(offer_sdp(), size=257), 400, "size"),
    Case("not SDP", "/api/offer", lambda: offer("this is not SDP"), 400, "v=0"),
    Case("truncated offer", "/api/offer", lambda: offer(offer_sdp()[: len(offer_sdp()) // 2]), 400, "invalid SDP"),
    Case("no DTLS fingerprint", "/api/offer", no_fingerprint, 400, "fingerprint"),
    Case("audio only", "/api/offer", lambda: offer(offer_sdp(audio=True, video=False)), 400, "no video"),
    Case("switch target without token", "/api/sessions/nope/target", lambda: b'{"target": "astronaut"}', 404,
         "unknown or closed session"),
    Case("upload not multipart", "/api/targets", lambda: b'{"photo": 1}', 400, "multipart"),
    Case("30000x30000 PNG", "/api/targets", lambda: multipart(("huge.png", huge_png())), 413, "too large",
         f"multipart/form-data; boundary={BOUNDARY}"),
    Case("one faceless photo of three", "/api/targets",
         lambda: multipart(("grace.jpg", GRACE.read_bytes()),
                           ("landscape.jpg", sample_media("free-mountain-vector-01.jpg").read_bytes()),
                           ("again.jpg", GRACE.read_bytes())),
         422, "no face found in photo 2 of 3", f"multipart/form-data; boundary={BOUNDARY}"),
    Case("16-bit grayscale PNG", "/api/targets", lambda: multipart(("grace16.png", grace_gray16())), 201, "",
         f"multipart/form-data; boundary={BOUNDARY}"),
    Case("face 60 px wide in 817 px", "/api/targets", lambda: multipart(("small.jpg", small_face_photo())), 201, "",
         f"multipart/form-data; boundary={BOUNDARY}"),
]


def post(server: RunningServer, path: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    request = urllib.request.Request(server.url + path, data=body, method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.name for c in CATALOGUE])
def test_bad_input_gets_a_clear_answer(server: RunningServer, case: Case) -> None:
    status, raw = post(server, case.path, case.body(), case.content_type)
    answer = json.loads(raw)
    assert status == case.status, answer
    if status >= 400:
        assert case.words.lower() in answer["error"].lower()
        assert len(raw) < 400, "an error message must not echo the input"
        assert "Traceback" not in raw.decode() and "NoneType" not in raw.decode()
    assert server.get_json("/healthz")["sessions"] == 0  # nothing leaked
    assert "Traceback" not in server.log()


def test_uploaded_16_bit_photo_keeps_its_tones(server: RunningServer) -> None:
    """convert("RGB") clipped 16-bit gray to white: the crop must show a face, not a white square."""
    status, raw = post(server, "/api/targets", multipart(("grace16.png", grace_gray16())),
                       f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 201
    with urllib.request.urlopen(server.url + json.loads(raw)["image_url"], timeout=30) as response:
        crop = np.asarray(Image.open(io.BytesIO(response.read())).convert("L"), np.float32)
    assert 40 < crop.mean() < 200 and crop.std() > 20

"""POST /api/targets against a real server: the faces found (boxes, crops), picking one with the `face` field,
and the photo check's warnings (a group photo, a closed-eyes still, a small face)."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from PIL import Image

from loadtest.local_server import RunningServer, running_server
from models.align import align_face
from models.assets import gallery, sample_media
from models.face_choice import find_faces
from tests.media_utils import read_video_frames

BOUNDARY = "----face-picker-test"
SHUT_EYES_FRAME = 448  # WolfgangLanger_Pexels.mp4: she laughs with her eyes shut (an untouched frame)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("faces"), "--generator", "passthrough") as running:
        yield running


def upload(server: RunningServer, photos: list[bytes], face: str | None = None) -> tuple[int, dict]:
    body = b""
    if face is not None:
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"face\"\r\n\r\n{face}\r\n").encode()
    for index, data in enumerate(photos):
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{index}.jpg\"\r\n"
                 "Content-Type: image/jpeg\r\n\r\n").encode() + data + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    request = urllib.request.Request(server.url + "/api/targets", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG")
    return buffer.getvalue()


def image_at(server: RunningServer, url: str) -> np.ndarray:
    with urllib.request.urlopen(server.url + url, timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB")).astype(np.float32)


def test_a_group_photo_lists_its_faces_and_one_can_be_picked(server: RunningServer) -> None:
    data = sample_media("multi_face.jpg").read_bytes()
    code, answer = upload(server, [data])
    assert code == 201, answer
    (photo,) = answer["photos"]
    assert answer["choose"] and photo["close_call"] and len(photo["faces"]) == 4
    assert photo["size"] == [1000, 667]
    for face in photo["faces"]:
        assert face["crop"].startswith("data:image/jpeg;base64,")
        thumb = Image.open(io.BytesIO(base64.b64decode(face["crop"].split(",", 1)[1])))
        assert thumb.format == "JPEG" and thumb.size == (96, 96)
    scores = [face["score"] for face in photo["faces"]]
    assert photo["face"] == int(np.argmax(scores))

    # The caller picks another: the new target's image (what the page shows) is that face, aligned, and it is
    # what the avatar uses (GET .../image serves the target's own aligned crop).
    other = next(i for i in range(4) if i != photo["face"])
    code, picked = upload(server, [data], face=str(other))
    assert code == 201 and picked["id"] != answer["id"]
    assert picked["photos"][0]["face"] == other and not picked["choose"]
    group = cv2.cvtColor(cv2.imread(str(sample_media("multi_face.jpg"))), cv2.COLOR_BGR2RGB)
    expected = align_face(group, find_faces(group)[other].landmarks, 256)[0].astype(np.float32)
    assert np.abs(image_at(server, picked["image_url"]) - expected).mean() < 4.0  # JPEG
    assert np.abs(image_at(server, answer["image_url"]) - expected).mean() > 20.0


@pytest.mark.parametrize(("face", "status", "words"), [
    ("7", 422, "the photo has 4 faces (0-3): there is no face 7"),
    ("two", 400, "must be face numbers"),
    ("1,2", 400, "names faces for 2 photos, but the upload has 1"),
    ("1" * 300, 400, "too long"),
])
def test_bad_face_choices_get_clear_errors(server: RunningServer, face: str, status: int, words: str) -> None:
    code, answer = upload(server, [sample_media("multi_face.jpg").read_bytes()], face=face)
    assert code == status and words in answer["error"]


def test_photo_check_warns_in_plain_words_and_refuses_nothing(server: RunningServer) -> None:
    frames = read_video_frames(sample_media("WolfgangLanger_Pexels.mp4"), max_frames=SHUT_EYES_FRAME + 1)
    code, shut = upload(server, [png(frames[SHUT_EYES_FRAME])])
    assert code == 201, shut
    assert shut["photos"][0]["check"]["eyes"] == "closed"
    assert "the eyes are closed in this photo: the avatar cannot open them" in shut["warnings"]
    grace = cv2.cvtColor(cv2.imread(str(next(e.path for e in gallery() if e.id == "grace_hopper"))),
                         cv2.COLOR_BGR2RGB)
    code, fine = upload(server, [png(grace)])
    assert code == 201 and fine["warnings"] == [] and not fine["choose"] and len(fine["photos"][0]["faces"]) == 1
    small = cv2.resize(grace, (150, 150), interpolation=cv2.INTER_AREA)
    code, few = upload(server, [png(grace), png(small)])
    assert code == 201
    face_px = few["photos"][1]["check"]["face_px"]
    assert 40 <= face_px <= 70
    assert any(w.startswith(f"photo 2: the face is {face_px} px wide: the avatar will be blurry")
               for w in few["warnings"]), few["warnings"]
    assert few["photos"][0]["warnings"] == []

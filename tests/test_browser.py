"""The demo page in a real headless Chromium (Debian's), with a fake camera playing a real face video."""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from loadtest.local_server import REPO_ROOT, RunningServer, running_server
from models.landmarks import detect_face_boxes, to_gray
from tests.media_utils import write_y4m

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed"),
]


@pytest.fixture(scope="module")
def fake_camera(tmp_path_factory: pytest.TempPathFactory, talking_face_frames: list[np.ndarray]) -> Path:
    frames = [cv2.resize(f, (640, 360)) for f in talking_face_frames]
    return write_y4m(frames, tmp_path_factory.mktemp("camera") / "driver.y4m")


@pytest.fixture(scope="module")
def browser(fake_camera: Path) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream=fps=30", f"--use-file-for-fake-video-capture={fake_camera}",
            "--allow-loopback-in-peer-connection", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ])
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("browser"), "--generator", "warp", "--max-sessions", "1") as running:
        yield running


def wait_for(page, expression: str, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {expression}; page says: {page.inner_text('#message')!r}")


def avatar_frame(page) -> np.ndarray:
    data_url = page.evaluate("""() => {
        const video = document.getElementById('remote');
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        canvas.getContext('2d').drawImage(video, 0, 0);
        return canvas.toDataURL('image/png');
    }""")
    png = np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_call_from_the_demo_page(browser, server: RunningServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(server.url + "/")
    page.wait_for_selector("#gallery button[data-id='astronaut']")
    page.click("#start")
    wait_for(page, "window.marionette.connected")
    session_id = page.evaluate("window.marionette.sessionId")
    first = wait_for(page, "window.marionette.framesDecoded > 5 && window.marionette.framesDecoded")
    time.sleep(2)
    assert page.evaluate("window.marionette.framesDecoded") > first + 20  # the avatar video plays
    assert page.evaluate("document.getElementById('remote').videoWidth") == 256
    assert page.evaluate("window.marionette.fps") > 5
    frame = avatar_frame(page)
    assert detect_face_boxes(to_gray(frame)), "the avatar video shows no face"
    assert page.inner_text("#stat-fps").endswith("fps")
    wait_for(page, "window.marionette.estimatedLatencyMs > 0")

    # Switch target mid-call: same session, frames keep coming, the server reports the new target.
    page.click("#gallery button[data-id='grace_hopper']")
    wait_for(page, "window.marionette.lastStatus && window.marionette.lastStatus.target === 'grace_hopper'")
    assert page.evaluate("window.marionette.sessionId") == session_id
    before = page.evaluate("window.marionette.framesDecoded")
    time.sleep(1.5)
    assert page.evaluate("window.marionette.framesDecoded") > before + 10
    page.click("#calibrate")
    wait_for(page, "document.getElementById('message').textContent.includes('Calibrated')")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_call.png"), full_page=True)
    assert server.get_json("/healthz")["sessions"] == 1
    page.click("#hangup")
    deadline = time.monotonic() + 5
    while server.get_json("/healthz")["sessions"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.get_json("/healthz")["sessions"] == 0
    page.close()


def test_server_full_and_bad_upload_show_clear_messages(browser, server: RunningServer) -> None:
    first, second = browser.new_page(), browser.new_page()
    for page in (first, second):
        page.goto(server.url + "/")
        page.wait_for_selector("#gallery button")
    first.click("#start")
    wait_for(first, "window.marionette.connected")
    second.click("#start")  # the server allows one session
    message = wait_for(second, "window.marionette.error")
    assert "server is full" in message.lower()
    assert second.inner_text("#badge") == "not connected"

    second.set_input_files("#upload", files=[{"name": "notes.txt", "mimeType": "image/jpeg",
                                               "buffer": b"this is not a photo"}])
    message = wait_for(second, "document.getElementById('message').textContent.includes('Upload failed') && "
                               "document.getElementById('message').textContent")
    assert "not a readable image" in message
    first.click("#hangup")
    first.close()
    second.close()


@pytest.fixture(scope="module")
def room_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("room"), "--generator", "warp") as running:
        yield running


def tile_frame(page, name: str) -> np.ndarray:
    data_url = page.evaluate("""(name) => {
        const tile = Object.values(window.marionette.tiles).find((t) => t.name === name);
        const canvas = document.createElement('canvas');
        canvas.width = tile.video.videoWidth; canvas.height = tile.video.videoHeight;
        canvas.getContext('2d').drawImage(tile.video, 0, 0);
        return canvas.toDataURL('image/png');
    }""", name)
    png = np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_two_people_in_an_avatar_room(browser, room_server: RunningServer) -> None:
    ann = browser.new_context(viewport={"width": 1280, "height": 1100}).new_page()
    bob = browser.new_context(viewport={"width": 1280, "height": 1100}).new_page()
    ann.goto(room_server.url + "/")
    ann.fill("#name", "Ann")
    ann.click("#create-room")
    link = wait_for(ann, "document.getElementById('share-link').value")
    assert "?room=" in link
    ann.click("#start")
    wait_for(ann, "window.marionette.connected")

    bob.goto(link)
    bob.wait_for_selector("#gallery button[data-id='grace_hopper']")
    assert bob.inner_text("#start") == "Join room"
    bob.fill("#name", "Bob")
    bob.click("#gallery button[data-id='grace_hopper']")
    bob.click("#start")
    wait_for(bob, "window.marionette.connected")

    for viewer, other in ((ann, "Bob"), (bob, "Ann")):
        first = wait_for(viewer, f"(window.marionette.tileFrames()['{other}'] || 0) > 10 && "
                                 f"window.marionette.tileFrames()['{other}']", timeout_s=30)
        time.sleep(1.5)
        assert viewer.evaluate(f"window.marionette.tileFrames()['{other}']") > first + 10  # it plays
        assert detect_face_boxes(to_gray(tile_frame(viewer, other))), f"no face in {other}'s tile"
    ARTIFACTS.mkdir(exist_ok=True)
    ann.screenshot(path=str(ARTIFACTS / "room_ann.png"), full_page=True)
    bob.screenshot(path=str(ARTIFACTS / "room_bob.png"), full_page=True)

    bob.click("#hangup")
    wait_for(ann, "window.marionette.roster && window.marionette.roster.participants.length === 1", timeout_s=5)
    assert ann.evaluate("Object.keys(window.marionette.tileFrames()).length") == 0  # Bob's tile is gone
    ann.click("#hangup")
    ann.context.close()
    bob.context.close()

"""Uploads a hostile client may send (issue 19, rows 3 and 4), against one real server: a small file that decodes
to a huge picture, parts that are not photos (streamed, to see how much the server reads of them), malformed
forms, file names the answer must not repeat, formats outside the allow-list, and more decodes than the pool has
threads. Every one gets a clear 4xx/503 with a short JSON message, never a 500 or a traceback."""

from __future__ import annotations

import concurrent.futures
import functools
import http.client
import io
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from loadtest.local_server import RunningServer, running_server
from models.assets import sample_media
from server.errors import ApiError
from server.photos import MAX_SIDE, decode_photo

GRACE = Path("/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg")
BOUNDARY = "----marionette-abuse"
FORM = f"multipart/form-data; boundary={BOUNDARY}"
MB = 1024 * 1024
JUNK_BYTES = 200 * MB


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # One decode thread and no queue: a second decode at the same time is refused (503), so the pool is seen.
    with running_server(tmp_path_factory.mktemp("abuse"), "--generator", "passthrough", "--admission", "cap",
                        "--trust-forwarded-for", "--decode-threads", "1", "--decode-queue", "0") as running:
        yield running


# ---- the pieces of a form ----------------------------------------------------------------------------------

def part_head(field: str = "photo", filename: str = "photo.jpg") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


def form(*parts: tuple[bytes, bytes]) -> bytes:
    """(head, data) parts, closed by the final boundary."""
    return b"".join(head + data + b"\r\n" for head, data in parts) + f"--{BOUNDARY}--\r\n".encode()


def photo(data: bytes, filename: str = "photo.jpg") -> tuple[bytes, bytes]:
    return part_head(filename=filename), data


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@functools.cache
def gray16_png(side: int) -> bytes:
    """A 16-bit gray PNG, side x side, of a few tens of KB: a horizontal gradient compresses as well as zeros."""
    row = (np.arange(side, dtype=np.uint32) * 65535 // max(1, side - 1)).astype(np.uint16)
    return encoded(Image.fromarray(np.ascontiguousarray(np.broadcast_to(row, (side, side)))), "PNG")


def nested_part() -> bytes:
    inner = "----inner"
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"photo\"\r\n"
            f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n").encode()
    body = (f"--{inner}\r\nContent-Disposition: attachment; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + GRACE.read_bytes() + f"\r\n--{inner}--\r\n".encode()
    return head + body + b"\r\n" + f"--{BOUNDARY}--\r\n".encode()


# ---- talking to the server ---------------------------------------------------------------------------------

def post(server: RunningServer, body: bytes, content_type: str = FORM,
         headers: dict[str, str] | None = None) -> tuple[int, bytes, http.client.HTTPMessage]:
    request = urllib.request.Request(server.url + "/api/targets", data=body, method="POST",
                                     headers={"Content-Type": content_type, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers


def assert_clear_error(raw: bytes, words: str) -> None:
    assert len(raw) < 400, "an error message must not echo the input"
    assert words.lower() in json.loads(raw)["error"].lower(), raw


def server_status_kb(server: RunningServer, key: str) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_rss_rise_mb(server: RunningServer, body: bytes) -> tuple[float, int, bytes]:
    """How far one upload raises the server's peak RSS: the high-water mark is reset to the current RSS first
    (clear_refs 5), so the warm-up's peak cannot hide it."""
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
    before = server_status_kb(server, "VmRSS")
    status, raw, _ = post(server, body)
    return (server_status_kb(server, "VmHWM") - before) / 1024, status, raw


@dataclass
class Streamed:
    status: int
    body: bytes
    sent: int  # body bytes the client had sent when the answer arrived (or the connection broke)
    seconds: float


def stream_upload(server: RunningServer, pieces: Iterator[bytes], content_length: int | None) -> Streamed:
    """POST /api/targets sending `pieces` lazily (chunked without `content_length`) over a small send buffer,
    stopping as soon as the server answers: `sent` is how much of the body it let in before refusing."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    framing = f"Content-Length: {content_length}" if content_length is not None else "Transfer-Encoding: chunked"
    sock.sendall(f"POST /api/targets HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {FORM}\r\n{framing}\r\n"
                 "\r\n".encode())
    started, sent = time.monotonic(), 0
    try:
        for piece in pieces:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer (or the close) is there: send no more
            frame = piece if content_length is not None else b"%x\r\n%s\r\n" % (len(piece), piece)
            sock.sendall(frame)
            sent += len(piece)
        else:
            if content_length is None:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server closed while we were still sending: what it had answered is still readable
    response = http.client.HTTPResponse(sock)
    try:
        response.begin()
        return Streamed(response.status, response.read(), sent, time.monotonic() - started)
    finally:
        sock.close()


def junk(total: int = JUNK_BYTES, piece: int = 64 * 1024) -> Iterator[bytes]:
    block = b"\0" * piece
    for _ in range(total // piece):
        yield block


# ---- row 3: what one decode may cost ------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "status", "words"), [
    (6300, 413, "too large"),  # the 77 KB file: 79 MB of 16-bit pixels, past the decode budget
    (5000, 422, "no face"),  # within the budget: decoded, reduced to 2048 px, then to 8 bits in integers
], ids=["6300x6300 refused", "5000x5000 decoded reduced"])
def test_a_16_bit_png_raises_peak_rss_by_less_than_150_mb(server: RunningServer, side: int, status: int,
                                                          words: str) -> None:
    """Row 3: one 6300x6300 16-bit PNG (answered 422) raised the peak RSS from 535 MB to 1.59 GB."""
    rise, answered, raw = peak_rss_rise_mb(server, form(photo(gray16_png(side), "gray16.png")))
    print(f"{side}x{side} 16-bit PNG: peak RSS +{rise:.0f} MB, answered {answered}")
    assert rise < 150, f"peak RSS rose {rise:.0f} MB"
    assert answered == status, raw
    assert_clear_error(raw, words)


@pytest.mark.parametrize(("name", "data", "shape"), [
    ("40 MP baseline JPEG, decoded at 1/2 scale", lambda: encoded(Image.new("RGB", (7700, 5190)), "JPEG"),
     (1380, MAX_SIDE, 3)),
    ("12 MP progressive JPEG, decoded at 1/2 scale to fit", lambda: encoded(Image.new("RGB", (4032, 3024)), "JPEG",
                                                                          progressive=True), (1512, 2016, 3)),
    ("16 MP RGB PNG", lambda: encoded(Image.new("RGB", (4000, 4000)), "PNG"), (MAX_SIDE, MAX_SIDE, 3)),
    ("EXIF rotated JPEG", lambda: encoded(Image.new("RGB", (5000, 3000)), "JPEG", exif=_rotated()),
     (MAX_SIDE, 1229, 3)),
    ("16 MP WebP (libwebp takes ~4x its picture)", lambda: encoded(Image.new("RGB", (4000, 4000)), "WEBP"), 413),
    ("40 MP progressive JPEG (120 MB of coefficients)",
     lambda: encoded(Image.new("RGB", (7700, 5190)), "JPEG", progressive=True), 413),
    ("GIF", lambda: encoded(Image.new("RGB", (64, 64)), "GIF"), 415),
    ("TIFF", lambda: encoded(Image.new("RGB", (64, 64)), "TIFF"), 415),
    ("BMP", lambda: encoded(Image.new("RGB", (64, 64)), "BMP"), 415),
])
def test_decode_budget_and_formats(name: str, data, shape: tuple[int, ...] | int) -> None:
    """In process: what is decoded (and how small), what is refused by budget (413) or format (415)."""
    if isinstance(shape, int):
        with pytest.raises(ApiError) as refused:
            decode_photo(data(), "photo 1")
        assert refused.value.status == shape and refused.value.message.startswith("photo 1: ")
    else:
        assert decode_photo(data()).shape == shape


def _rotated() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to show upright
    return exif


def test_16_bit_gray_keeps_its_full_range_of_tones() -> None:
    rgb = decode_photo(gray16_png(3000))
    assert rgb.shape == (MAX_SIDE, MAX_SIDE, 3)
    assert (rgb[:, 0].max(), rgb[:, -1].min()) == (0, 255)  # black to white, not clipped to white


# ---- row 4: parts that are not photos -----------------------------------------------------------------------

def junk_then_photo() -> Iterator[bytes]:
    yield part_head(field="junk", filename="junk.bin")
    yield from junk()
    yield b"\r\n" + part_head() + GRACE.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()


def photo_then_junk() -> Iterator[bytes]:
    yield part_head() + GRACE.read_bytes() + b"\r\n" + part_head(field="junk", filename="junk.bin")
    yield from junk()
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def huge_photo() -> Iterator[bytes]:
    yield part_head()
    yield from junk()
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


STREAMED = [  # name, body, sent with Content-Length, status, words
    ("200 MB junk part before a photo", junk_then_photo, False, 400, "unexpected field 'junk'"),
    ("200 MB junk part after a photo", photo_then_junk, False, 400, "unexpected field 'junk'"),
    ("200 MB junk part, Content-Length said", junk_then_photo, True, 413, "upload too large"),
    ("200 MB photo part", huge_photo, False, 413, "upload too large"),  # the byte limit (8 MB) stays
]


@pytest.mark.parametrize(("name", "pieces", "with_length", "status", "words"), STREAMED,
                         ids=[row[0] for row in STREAMED])
def test_parts_past_the_limits_are_refused_without_being_read(server: RunningServer, name: str, pieces,
                                                              with_length: bool, status: int, words: str) -> None:
    """Row 4: a 200 MB `junk` part next to a photo was read to its end and answered 201 in 0.4 s."""
    length = sum(len(piece) for piece in pieces()) if with_length else None
    streamed = stream_upload(server, pieces(), length)
    assert streamed.status == status, streamed.body
    assert_clear_error(streamed.body, words)
    # What got in before the answer: the server's reads before refusing plus the loopback socket buffers.
    assert streamed.sent < 24 * MB, f"{streamed.sent / MB:.0f} MB sent before the answer"
    assert streamed.seconds < 10
    print(f"{name}: {streamed.sent / MB:.1f} MB sent before the answer, {streamed.seconds:.2f} s")
    assert "Traceback" not in server.log()


LONG_NAME = "x" * 4_000 + ".jpg"  # a part header line stays under aiohttp's 8 KB
FORMS = [  # name, body, content type, status, words, text the answer must not contain
    ("nested multipart part", nested_part, FORM, 400, "nested multipart", None),
    ("10 KB file name", lambda: form(photo(GRACE.read_bytes(), "x" * 10_000 + ".jpg")), FORM, 400,
     "header line is too long", "xxxxxxxx"),
    ("4 KB file name, not an image", lambda: form(photo(b"hello, not a picture", LONG_NAME)), FORM, 415,
     "photo 1: not a readable image", "xxxxxxxx"),
    ("4 KB file name, no face in photo 2 of 2",
     lambda: form(photo(GRACE.read_bytes(), "grace.jpg"),
                  photo(sample_media("free-mountain-vector-01.jpg").read_bytes(), LONG_NAME)),
     FORM, 422, "no face found in photo 2 of 2", "xxxxxxxx"),
    ("file name never repeated", lambda: form(photo(b"", "my-secret-name.jpg")), FORM, 400,
     "photo 1: the file is empty", "my-secret-name"),
    ("4 KB field name", lambda: form((part_head(field="y" * 4_000), b"data")), FORM, 400,
     "unexpected field (a 4000-character string)", "yyyyyyyy"),
    ("GIF", lambda: form(photo(encoded(Image.new("RGB", (64, 64)), "GIF"), "a.gif")), FORM, 415,
     "JPEG, PNG or WebP", None),
    ("TIFF", lambda: form(photo(encoded(Image.new("RGB", (64, 64)), "TIFF"), "a.tif")), FORM, 415,
     "JPEG, PNG or WebP", None),
    ("BMP", lambda: form(photo(encoded(Image.new("RGB", (64, 64)), "BMP"), "a.bmp")), FORM, 415,
     "JPEG, PNG or WebP", None),
    ("multipart without a boundary", lambda: form(photo(GRACE.read_bytes())), "multipart/form-data", 400,
     "well-formed", None),
    ("boundary never found", lambda: b"no boundary in here\r\n" * 10, FORM, 400, "well-formed", None),
    ("part headers of 1 MB", lambda: f"--{BOUNDARY}\r\nX-Filler: ".encode() + b"z" * MB + b"\r\n\r\n", FORM, 400,
     "well-formed", "zzzzzzzz"),
]


@pytest.mark.parametrize(("name", "body", "content_type", "status", "words", "absent"), FORMS,
                         ids=[row[0] for row in FORMS])
def test_malformed_forms_get_a_clear_short_answer(server: RunningServer, name: str, body, content_type: str,
                                                  status: int, words: str, absent: str | None) -> None:
    answered, raw, _ = post(server, body(), content_type)
    assert answered == status, raw
    assert_clear_error(raw, words)
    if absent:
        assert absent not in raw.decode()
    assert "Traceback" not in server.log()


# ---- the decode pool ----------------------------------------------------------------------------------------

def test_decodes_beyond_the_pool_get_503_with_retry_after(server: RunningServer) -> None:
    """Eight clients (X-Forwarded-For, the server trusts it from loopback) upload at once a 16 MP PNG that takes
    a decode thread ~1 s; the server has one decode thread and no queue: the others are told to come back."""
    body = form(photo(encoded(Image.new("RGB", (4000, 4000), (90, 120, 200)), "PNG"), "big.png"))
    start = threading.Barrier(8)

    def one(client: int) -> tuple[int, bytes, str | None]:
        start.wait()
        status, raw, headers = post(server, body, headers={"X-Forwarded-For": f"198.51.100.{client}"})
        return status, raw, headers.get("Retry-After")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(8)))
    busy = [(raw, retry) for status, raw, retry in answers if status == 503]
    assert busy, [status for status, _, _ in answers]
    assert all(retry and int(retry) > 0 for _, retry in busy)
    assert_clear_error(busy[0][0], "busy decoding other uploads")
    # The ones that got a decode thread were decoded: no face on a flat colour.
    assert {status for status, _, _ in answers} <= {503, 422}, answers
    assert 422 in {status for status, _, _ in answers}

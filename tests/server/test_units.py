"""Unit tests of the server's small pieces: frame ids, slots, SDP hints, config."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from rtc import frame_tag
from rtc.tuning import LowLatencyJitterBuffer
from server.config import parse_config
from server.sdp import BITRATE_HINT, add_bitrate_hints, ice_server
from server.slots import LatestFrameSlot


@pytest.mark.parametrize("frame_id", [0, 1, 2, 255, 4097, 65535])
def test_frame_tag_round_trip(frame_id: int) -> None:
    image = np.full((64, 256, 3), 128, np.uint8)
    frame_tag.write_tag(image, frame_id)
    assert frame_tag.read_tag(image) == frame_id


def test_frame_tag_rejects_untagged_and_damaged_images() -> None:
    rng = np.random.default_rng(0)
    assert frame_tag.read_tag(np.full((64, 256, 3), 128, np.uint8)) is None
    assert frame_tag.read_tag(rng.integers(0, 255, (64, 256, 3), dtype=np.uint8)) is None
    image = np.zeros((64, 256, 3), np.uint8)
    frame_tag.write_tag(image, 1234)
    image[:frame_tag.BLOCK, 0:frame_tag.BLOCK] ^= 255  # flip one data bit: the check bits catch it
    assert frame_tag.read_tag(image) is None


def test_frame_tag_survives_vp8() -> None:
    """The id must be readable after a real lossy encode/decode at a modest bitrate."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 256, 256, "yuv420p"
    encoder.bit_rate = 300_000
    encoder.time_base = fractions.Fraction(1, 30)
    decoder = av.CodecContext.create("libvpx", "r")
    rng = np.random.default_rng(1)
    decoded_ids = []
    for index in range(30):
        image = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)  # noise: the hardest content to encode
        frame_tag.write_tag(image, 1000 + index)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        for packet in encoder.encode(frame):
            for out in decoder.decode(packet):
                decoded_ids.append(frame_tag.read_tag(out.to_ndarray(format="rgb24")))
    assert len(decoded_ids) >= 25
    assert decoded_ids == list(range(1000, 1000 + len(decoded_ids)))


def test_latest_frame_slot_drops_stale_frames() -> None:
    slot = LatestFrameSlot()
    first, second = av.VideoFrame(16, 16, "yuv420p"), av.VideoFrame(16, 16, "yuv420p")
    assert slot.put(first) is False
    assert slot.put(second) is True  # first was never taken: dropped
    taken = slot.take()
    assert taken is not None and taken.frame is second
    assert slot.take() is None and not slot.ready


def test_bitrate_hints_added_to_every_video_codec() -> None:
    sdp = "\r\n".join([
        "v=0", "m=video 9 UDP/TLS/RTP/SAVPF 97 98 99",
        "a=rtpmap:97 VP8/90000", "a=rtpmap:98 rtx/90000", "a=fmtp:98 apt=97",
        "a=rtpmap:99 H264/90000", "a=fmtp:99 packetization-mode=1", ""])
    out = add_bitrate_hints(sdp).split("\r\n")
    assert f"a=fmtp:97 {BITRATE_HINT}" in out
    assert f"a=fmtp:99 packetization-mode=1;{BITRATE_HINT}" in out
    assert "a=fmtp:98 apt=97" in out  # rtx untouched


def test_config_from_flags_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARIONETTE_MAX_SESSIONS", "3")
    config = parse_config(["--generator", "passthrough", "--ice-servers", "stun:a:3478, turn:b:3478"])
    assert config.max_sessions == 3
    assert config.generator == "passthrough"
    assert config.ice_servers == ("stun:a:3478", "turn:b:3478")
    with pytest.raises(SystemExit):
        parse_config(["--generator", "nope"])


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("MARIONETTE_LANDMARKS", "nope", "choose from mesh, dlib"),
    ("MARIONETTE_MAX_SESSIONS", "many", "not a valid int"),
])
def test_bad_environment_settings_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, capsys, variable: str,
                                                      value: str, message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exit_info:
        parse_config([])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"{variable}='{value}'" in error and message in error


def _packet(seq: int, timestamp: int, data: bytes, marker: bool = False) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, marker=int(marker), payload=data)
    packet._data = data  # what aiortc's depayloader stores
    return packet


def test_jitter_buffer_emits_frame_on_its_marker_packet() -> None:
    buffer = LowLatencyJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_packet(10, 3000, b"ab"))[1] is None
    frame = buffer.add(_packet(11, 3000, b"cd", marker=True))[1]
    assert frame is not None and frame.data == b"abcd" and frame.timestamp == 3000
    # A frame with a missing middle packet waits until the gap is filled (retransmission).
    assert buffer.add(_packet(12, 6000, b"ef"))[1] is None
    assert buffer.add(_packet(14, 6000, b"ij", marker=True))[1] is None
    frame = buffer.add(_packet(13, 6000, b"gh"))[1]
    assert frame is None or frame.data == b"efghij"


def test_jitter_buffer_never_emits_empty_frames() -> None:
    buffer = LowLatencyJitterBuffer(capacity=128, is_video=True)
    assert buffer.add(_packet(1, 100, b"", marker=True))[1] is None  # padding only
    assert buffer.add(_packet(2, 200, b"", marker=False))[1] is None
    frame = buffer.add(_packet(3, 300, b"x", marker=True))[1]
    assert frame is not None and frame.data == b"x"


def test_ice_server_urls_carry_turn_credentials() -> None:
    turn = ice_server("turn:alice:s3cr:et@turn.example.com:3478?transport=udp")
    assert (turn.urls, turn.username, turn.credential) == ("turn:turn.example.com:3478?transport=udp", "alice",
                                                           "s3cr:et")
    stun = ice_server("stun:stun.example.com:3478")
    assert (stun.urls, stun.username, stun.credential) == ("stun:stun.example.com:3478", None, None)

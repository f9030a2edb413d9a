"""Small edits to the SDP answer that aiortc produces."""

from __future__ import annotations

import re

from aiortc import RTCIceServer

# aiortc only sends REMB, so Chromium's bandwidth estimate starts low and it sends 320x240 for
# 20+ s (DESIGN §7). Telling it the bitrate range up front gives 640x480 at once.
BITRATE_HINT = "x-google-min-bitrate=300;x-google-start-bitrate=1000;x-google-max-bitrate=2500"
_VIDEO_CODECS = ("VP8", "VP9", "H264")


def add_bitrate_hints(sdp: str) -> str:
    lines = sdp.split("\r\n")
    payload_types = {
        m.group(1)
        for line in lines
        if (m := re.match(r"a=rtpmap:(\d+) (\w+)/90000", line)) and m.group(2) in _VIDEO_CODECS
    }
    with_fmtp = set()
    out = []
    for line in lines:
        m = re.match(r"a=fmtp:(\d+) (.*)", line)
        if m and m.group(1) in payload_types:
            with_fmtp.add(m.group(1))
            line = f"a=fmtp:{m.group(1)} {m.group(2)};{BITRATE_HINT}"
        out.append(line)
    result = []
    for line in out:
        result.append(line)
        m = re.match(r"a=rtpmap:(\d+) ", line)
        if m and m.group(1) in payload_types and m.group(1) not in with_fmtp:
            result.append(f"a=fmtp:{m.group(1)} {BITRATE_HINT}")
    return "\r\n".join(result)


def ice_server(url: str) -> RTCIceServer:
    """`stun:host:port`, or `turn:user:password@host:port[?transport=udp]` with TURN credentials inline."""
    scheme, _, rest = url.partition(":")
    if scheme in ("turn", "turns") and "@" in rest:
        credentials, _, address = rest.rpartition("@")
        username, _, password = credentials.partition(":")
        return RTCIceServer(urls=f"{scheme}:{address}", username=username, credential=password)
    return RTCIceServer(urls=url)

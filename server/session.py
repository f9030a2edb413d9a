"""One caller's session: its peer connection, frame slots, model state and live stats."""

from __future__ import annotations

import collections
import contextlib
import hmac
import json
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import av
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection

from models.pipeline import DriverState, TargetFace
from rtc import messages
from server.slots import LatestFrameSlot, OutputSlot

FPS_WINDOW_S = 2.0  # the input frame rate is measured over this long


@dataclass(frozen=True)
class PreparedTarget:
    id: str
    face: TargetFace


class AvatarTrack(MediaStreamTrack):
    """Outbound video: each avatar frame as the batcher produces it, with the driver frame's pts."""

    kind = "video"

    def __init__(self, output: OutputSlot) -> None:
        super().__init__()
        self.output = output

    async def recv(self) -> av.VideoFrame:
        return await self.output.get()

    def stop(self) -> None:
        self.output.close()
        super().stop()


class AvatarFeed:
    """One participant's avatar frames, generated once and handed to every subscribed track."""

    def __init__(self) -> None:
        self._tracks: set[AvatarTrack] = set()

    def subscribe(self) -> AvatarTrack:
        track = AvatarTrack(OutputSlot())
        self._tracks.add(track)
        track.on("ended", lambda: self._tracks.discard(track))
        return track

    @property
    def subscribers(self) -> int:
        return len(self._tracks)

    def publish(self, frame: av.VideoFrame) -> None:
        for track in self._tracks:
            track.output.put(frame)

    def close(self) -> None:
        for track in list(self._tracks):
            track.stop()


class Session:
    def __init__(self, pc: RTCPeerConnection, target: PreparedTarget, driver_state: DriverState,
                 size: int, measure: bool) -> None:
        self.id = secrets.token_urlsafe(12)
        self.token = secrets.token_urlsafe(24)
        self.pc = pc
        self.target: PreparedTarget = target
        self.driver_state = driver_state
        self.size = size
        self.measure = measure
        self.slot = LatestFrameSlot()
        self.feed = AvatarFeed()
        self.avatar_track = self.feed.subscribe()  # the caller's own view of their avatar
        self.status_channel: RTCDataChannel | None = None
        self.receiving = False  # the camera track is being read (only one video track per caller)
        self.client = ""  # the caller's address, for per-client limits (server.client_limits)
        self.created = time.monotonic()
        self.set_up = self.created  # when negotiation finished: the first frame is due from then
        self.last_frame = self.created  # when the camera's latest frame was decoded
        self._first_frame: float | None = None
        self._in_times: collections.deque[float] = collections.deque(maxlen=256)  # > 2 s of a 120 fps camera
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.face_found = False
        self._out_times: collections.deque[float] = collections.deque(maxlen=60)
        self._latencies: collections.deque[float] = collections.deque(maxlen=60)
        self.closed = False
        self._calibration_requested = False  # set on the event loop, taken by the batcher with the next frame
        self.on_close: list[Callable[[Session], Awaitable[None]]] = []  # e.g. leaving a room
        self.on_channel_open: list[Callable[[], None]] = []  # e.g. sending the room roster

    def check_token(self, token: str) -> bool:
        return hmac.compare_digest(self.token.encode(), token.encode())

    def request_calibration(self) -> None:
        self._calibration_requested = True

    def take_calibration_request(self) -> bool:
        requested, self._calibration_requested = self._calibration_requested, False
        return requested

    def negotiated(self) -> None:
        """The answer is out: the video-idle clock starts now, not while the offer was being negotiated."""
        self.set_up = self.last_frame = time.monotonic()

    def frame_received(self) -> None:
        now = time.monotonic()
        self.last_frame = now
        if self._first_frame is None:
            self._first_frame = now
        self._in_times.append(now)
        self.frames_in += 1

    def fps_in(self, now: float) -> float | None:
        """Camera frames decoded a second over the last FPS_WINDOW_S; None until that has been measured for a
        whole window (from the first frame, or from set-up while none came)."""
        measuring_since = self._first_frame if self._first_frame is not None else self.set_up
        if now - measuring_since < FPS_WINDOW_S:
            return None
        return sum(1 for t in self._in_times if t > now - FPS_WINDOW_S) / FPS_WINDOW_S

    def deliver(self, frame: av.VideoFrame, face_found: bool, latency_s: float) -> None:
        self.feed.publish(frame)
        self.frames_out += 1
        self.face_found = face_found
        self._out_times.append(time.monotonic())
        self._latencies.append(latency_s)

    def fps_out(self) -> float:
        times = [t for t in self._out_times if t > time.monotonic() - 2.0]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    def status(self) -> dict:
        return {
            "type": messages.STATUS,
            "session_id": self.id,
            "face_found": self.face_found,
            "fps_out": round(self.fps_out(), 1),
            "server_ms": round(1000 * statistics.median(self._latencies), 1) if self._latencies else None,
            "target": self.target.id,
            "calibrated": (self.driver_state.neutral is not None and not self.driver_state.calibrate_next
                           and not self._calibration_requested),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_dropped": self.frames_dropped,
        }

    def send_status(self) -> None:
        self._send(self.status())

    def send_closed(self, reason: str) -> None:
        """Tell the caller why the server ends the call (best effort: the channel may be gone already)."""
        with contextlib.suppress(Exception):
            self._send({"type": messages.CLOSED, "reason": reason})

    def _send(self, message: dict) -> None:
        channel = self.status_channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(message))

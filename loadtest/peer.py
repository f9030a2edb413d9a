"""One synthetic caller: streams a face video to the server and measures the avatar it gets back.

Each driver frame carries its id as a corner barcode (rtc.frame_tag); the session is opened
with `measure: true`, so the server copies the id into the avatar frame. Matching ids gives the
end-to-end latency of every frame, independent of RTP timestamp origins and dropped frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from dataclasses import dataclass, field

import aiohttp
import av
import cv2
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack, VideoStreamTrack

from loadtest.netns import local_scope
from rtc import frame_tag, messages
from rtc.ice_scope import install_ice_scope, installed_scope, is_loopback_url, sdp_candidates
from rtc.tuning import install_low_latency_jitter_buffer

VIDEO_CLOCK = 90_000


@dataclass(frozen=True)
class PeerConfig:
    url: str = "http://127.0.0.1:8080"
    target: str = "astronaut"
    fps: float = 30.0
    width: int = 640
    height: int = 360
    output_size: int = 256
    codec: str = "vp8"  # vp8 | h264
    keep_frames: int = 0  # received avatar frames to keep (RGB arrays), for quality checks
    measure: bool = True
    room: str | None = None  # join this avatar room instead of a one-to-one session
    room_tiles: int = 3  # tiles offered for the other participants (room size - 1)
    name: str = "synthetic"
    audio: bool = False  # also send a microphone track (silence), as a browser with a mic does
    extra_video: int = 0  # more camera tracks than the one the server reads (a misbehaving client)
    send_video: bool = True  # False: offers a camera but never sends a frame (a stalled or hostile client)
    ping_every_s: float = 0.0  # > 0: ping over the status channel this often (the pongs land in stats.statuses)
    source_address: str | None = None  # the local address HTTP requests come from (e.g. 127.0.0.2: another client)


class NoReachableCandidateError(ConnectionError):
    """The answer offers no address this process's ICE scope lets it check (e.g. a loopback run against a server
    that does not gather on loopback)."""


class RejectedError(Exception):
    """The server refused the session (HTTP error with its message)."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after  # the Retry-After header, when the server sent one


@dataclass
class ReceivedFrame:
    frame_id: int | None
    pts: int
    arrived: float
    width: int
    height: int


@dataclass
class PeerStats:
    setup_seconds: float | None = None
    sent: int = 0
    sent_at: dict[int, float] = field(default_factory=dict)  # frame id -> send time
    sent_pts: dict[int, int] = field(default_factory=dict)
    received: list[ReceivedFrame] = field(default_factory=list)
    kept_frames: list[tuple[int | None, np.ndarray]] = field(default_factory=list)
    statuses: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Rooms: frames received on each tile (mid) showing another participant, and the latest roster.
    tile_frames: dict[str, list[tuple[float, np.ndarray]]] = field(default_factory=dict)
    tile_ids: dict[str, list[tuple[float, int | None]]] = field(default_factory=dict)  # arrival, sender's frame id
    roster: dict | None = None

    def tile_of(self, participant_name: str) -> str | None:
        for entry in (self.roster or {}).get("participants", []):
            if entry["name"] == participant_name:
                return entry["mid"] or tile_key(entry.get("feed"))
        return None

    def latencies_ms(self) -> list[float]:
        return [1000 * (r.arrived - self.sent_at[r.frame_id]) for r in self.received
                if r.frame_id is not None and r.frame_id in self.sent_at]

    def received_fps(self, skip_seconds: float = 1.0) -> float:
        times = [r.arrived for r in self.received]
        if len(times) < 2:
            return 0.0
        times = [t for t in times if t >= times[0] + skip_seconds] or times
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)


def tile_key(feed: int | None) -> str | None:
    """Rooms through an SFU have no tiles on the call: each other participant is a watched feed."""
    return None if feed is None else f"feed:{feed}"


class DriverTrack(MediaStreamTrack):
    """Loops the given RGB frames at a steady rate, each stamped with its frame id."""

    kind = "video"

    def __init__(self, frames: list[np.ndarray], config: PeerConfig, stats: PeerStats) -> None:
        super().__init__()
        self._frames = [cv2.resize(f, (config.width, config.height), interpolation=cv2.INTER_AREA) for f in frames]
        self._config = config
        self._stats = stats
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError  # stopped: the sender stops sending
        if self._start is None:
            self._start = time.perf_counter()
        due = self._start + self._index / self._config.fps
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        image = self._frames[self._index % len(self._frames)].copy()
        frame_id = self._index % frame_tag.ID_MODULO
        if self._config.measure:
            frame_tag.write_tag(image, frame_id)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = int(self._index * VIDEO_CLOCK / self._config.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._stats.sent_at[frame_id] = time.perf_counter()
        self._stats.sent_pts[frame_id] = frame.pts
        self._stats.sent += 1
        self._index += 1
        return frame


class SyntheticPeer:
    def __init__(self, frames: list[np.ndarray], config: PeerConfig) -> None:
        install_low_latency_jitter_buffer()
        if is_loopback_url(config.url) and installed_scope() is None:
            install_ice_scope(local_scope())  # a local run's media stays on loopback (process-wide, rtc.ice_scope)
        self.config = config
        self.stats = PeerStats()
        self.session_id: str | None = None
        self.token: str | None = None
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._driver = DriverTrack(frames, config, self.stats)
        self._tasks: list[asyncio.Task] = []
        self._http: aiohttp.ClientSession | None = None
        self.sfu: str | None = None  # "janus": the others' avatars are watched from the SFU, not tiles
        self._watches: dict[int, tuple[str, RTCPeerConnection]] = {}  # feed -> (watch id, its connection)
        self._watch_lock = asyncio.Lock()
        self.offer_sdp: str | None = None  # the SDP of the call, for checks of where its media goes
        self.answer_sdp: str | None = None

    async def __aenter__(self) -> SyntheticPeer:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        started = time.perf_counter()
        connector = aiohttp.TCPConnector(local_addr=(self.config.source_address, 0)) if self.config.source_address \
            else None
        self._http = aiohttp.ClientSession(connector=connector)
        channel = self._pc.createDataChannel(messages.CHANNEL_LABEL)
        if self.config.ping_every_s > 0:
            channel.on("open", lambda: self._tasks.append(asyncio.create_task(self._ping(channel))))
        if not self.config.send_video:
            self._driver.stop()  # the camera is offered (sendrecv) but its sender has nothing to send

        @channel.on("message")
        def on_message(message: str) -> None:
            with contextlib.suppress(ValueError, TypeError):
                data = json.loads(message)
                if data.get("type") == messages.ROSTER:
                    self.stats.roster = data
                    if data.get("sfu"):
                        self._tasks.append(asyncio.create_task(self._sync_watches()))
                else:
                    self.stats.statuses.append(data)

        transceiver = self._pc.addTransceiver(self._driver, direction="sendrecv")
        self._prefer_codec(transceiver)
        if self.config.audio:
            self._pc.addTrack(AudioStreamTrack())
        for _ in range(self.config.extra_video):
            self._prefer_codec(self._pc.addTransceiver(VideoStreamTrack(), direction="sendrecv"))
        own_mid: list[str] = []
        if self.config.room:
            for _ in range(self.config.room_tiles):
                self._prefer_codec(self._pc.addTransceiver("video", direction="recvonly"))

        @self._pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            mid = next(t.mid for t in self._pc.getTransceivers() if t.receiver.track is track)
            if mid == own_mid[0]:
                self._tasks.append(asyncio.create_task(self._receive(track)))
            else:
                self._tasks.append(asyncio.create_task(self._receive_tile(mid, track)))

        await self._pc.setLocalDescription(await self._pc.createOffer())
        own_mid.append(transceiver.mid)
        body = {"sdp": self._pc.localDescription.sdp, "type": "offer", "target": self.config.target,
                "size": self.config.output_size, "measure": self.config.measure, "name": self.config.name}
        path = f"/api/rooms/{self.config.room}/join" if self.config.room else "/api/offer"
        async with self._http.post(f"{self.config.url}{path}", json=body) as response:
            answer = await response.json(content_type=None)
            if response.status != 200:
                await self.close()
                raise RejectedError(response.status, answer.get("error", "?") if isinstance(answer, dict) else "?",
                                    response.headers.get("Retry-After"))
        self.session_id, self.token = answer["session_id"], answer["token"]
        self.sfu = answer.get("sfu")
        self.offer_sdp, self.answer_sdp = self._pc.localDescription.sdp, answer["sdp"]
        scope = installed_scope()
        if scope is not None and all(scope.refusal(*c) for c in sdp_candidates(answer["sdp"])):
            await self.close()
            hint = " (start it with --ice-host-addresses 127.0.0.1)" if is_loopback_url(self.config.url) else ""
            raise NoReachableCandidateError(f"the server's answer offers no ICE candidate within this process's "
                                            f"scope{hint}: {sdp_candidates(answer['sdp'])[:4]}")
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self._setup_started = started

    def _prefer_codec(self, transceiver) -> None:
        from aiortc.rtcrtpsender import RTCRtpSender

        wanted = "video/" + self.config.codec.upper()
        codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType.upper() == wanted.upper()]
        rtx = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/rtx"]
        if codecs:
            transceiver.setCodecPreferences(codecs + rtx)

    async def _receive(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.perf_counter()
                if self.stats.setup_seconds is None:
                    self.stats.setup_seconds = now - self._setup_started
                rgb = frame.to_ndarray(format="rgb24")
                frame_id = frame_tag.read_tag(rgb) if self.config.measure else None
                self.stats.received.append(ReceivedFrame(frame_id, frame.pts, now, frame.width, frame.height))
                if len(self.stats.kept_frames) < self.config.keep_frames:
                    self.stats.kept_frames.append((frame_id, rgb))
        except MediaStreamError:
            pass
        except Exception as error:  # a decode problem is a finding of the run, not a crash
            self.stats.errors.append(repr(error))

    async def _ping(self, channel) -> None:
        while channel.readyState == "open":
            channel.send(json.dumps({"type": messages.PING, "t": time.perf_counter()}))
            await asyncio.sleep(self.config.ping_every_s)

    def selected_pair(self) -> tuple[tuple[str, int], tuple[str, int]] | None:
        """(local, remote) address of the call's nominated ICE pair (aioice's), once connected."""
        connection = self._pc.getTransceivers()[0].sender.transport.transport.iceGatherer._connection
        pair = connection._nominated.get(1)
        return None if pair is None else (pair.local_addr, pair.remote_addr)

    def stop_camera(self) -> None:
        """Stop sending video but keep the connection (a frozen or unplugged camera)."""
        self._driver.stop()

    async def _receive_tile(self, mid: str, track: MediaStreamTrack) -> None:
        frames = self.stats.tile_frames.setdefault(mid, [])
        ids = self.stats.tile_ids.setdefault(mid, [])
        try:
            while True:
                frame = await track.recv()
                now = time.perf_counter()
                keep = len(frames) < self.config.keep_frames
                frames.append((now, frame.to_ndarray(format="rgb24") if keep else None))
                if self.config.measure:  # the sender's frame id, from the luma rows of the tag (cheap: no RGB)
                    ids.append((now, frame_tag.read_tag(frame.to_ndarray()[:frame_tag.BLOCK, :frame_tag.WIDTH])))
        except MediaStreamError:
            pass
        except Exception as error:
            self.stats.errors.append(repr(error))

    async def _sync_watches(self) -> None:
        """Watch every other participant's feed the roster names; stop watching those who left."""
        async with self._watch_lock:
            roster = self.stats.roster or {}
            wanted = {p["feed"] for p in roster.get("participants", [])
                      if p.get("feed") is not None and p["id"] != roster.get("you")}
            for feed in set(self._watches) - wanted:
                watch_id, pc = self._watches.pop(feed)
                await pc.close()
                with contextlib.suppress(aiohttp.ClientError, AssertionError):
                    await self.request("DELETE", f"/watch/{watch_id}")
            missing = wanted - set(self._watches)
            for feed in missing:
                try:
                    await self._watch(feed)
                except RejectedError as error:
                    if error.status != 404:  # 404: the feed's media is not up yet (or it just left): retried
                        self.stats.errors.append(f"watch {feed}: {error}")
                except aiohttp.ClientError as error:
                    self.stats.errors.append(f"watch {feed}: {error!r}")
        if missing - set(self._watches):  # e.g. the feed's media was not up yet: try again shortly
            await asyncio.sleep(1.0)
            self._tasks.append(asyncio.create_task(self._sync_watches()))

    async def _watch(self, feed: int) -> None:
        status, offer = await self.request("POST", "/watch", json={"feed": feed})
        if status != 201:
            raise RejectedError(status, offer.get("error", "?"))
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._watches[feed] = (offer["watch_id"], pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._tasks.append(asyncio.create_task(self._receive_tile(tile_key(feed), track)))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
        status, body = await self.request("POST", f"/watch/{offer['watch_id']}",
                                          json={"sdp": pc.localDescription.sdp, "type": "answer"})
        if status != 200:  # forget it, so the next sync tries again
            del self._watches[feed]
            await pc.close()
            await self.request("DELETE", f"/watch/{offer['watch_id']}")
            raise RejectedError(status, body.get("error", "?"))

    async def request(self, method: str, path: str, **kwargs) -> tuple[int, dict]:
        assert self._http is not None and self.session_id is not None
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.config.url}/api/sessions/{self.session_id}{path}"
        async with self._http.request(method, url, headers=headers, **kwargs) as response:
            return response.status, await response.json(content_type=None)

    async def close(self, hang_up: bool = True) -> None:
        if hang_up and self.session_id and self._http and not self._http.closed:
            with contextlib.suppress(aiohttp.ClientError, AssertionError):
                await self.request("DELETE", "")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, pc in self._watches.values():
            await pc.close()
        self._watches.clear()
        await self._pc.close()
        if self._http:
            await self._http.close()

"""Opening, tracking and closing sessions: WebRTC negotiation, limits, heartbeat, status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from models.pipeline import ReenactmentPipeline
from rtc import messages
from server import metrics
from server.batcher import FrameBatcher
from server.config import ServerConfig
from server.errors import ApiError
from server.sdp import add_bitrate_hints, ice_server
from server.session import PreparedTarget, Session

log = logging.getLogger(__name__)
STATUS_INTERVAL_S = 0.5


class SessionRegistry:
    def __init__(self, config: ServerConfig, pipeline: ReenactmentPipeline, batcher: FrameBatcher) -> None:
        self._config = config
        self._pipeline = pipeline
        self._batcher = batcher
        self._sessions: dict[str, Session] = {}
        self._pending = 0  # offers being negotiated, counted against the limit
        self._tasks: set[asyncio.Task] = set()
        self._housekeeping: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def start(self) -> None:
        self._housekeeping = asyncio.create_task(self._housekeep(), name="session-housekeeping")

    def get(self, session_id: str, token: str | None) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise ApiError(404, "unknown or closed session")
        if not token:
            raise ApiError(401, "missing session token (Authorization: Bearer <token>)")
        if not session.check_token(token):
            raise ApiError(401, "wrong session token")
        return session

    async def open(
        self, offer_sdp: str, target: PreparedTarget, size: int, measure: bool,
        before_answer: Callable[[Session], None] | None = None,
    ) -> tuple[Session, str]:
        """Negotiate a new session; `before_answer` may add more outbound tracks (room tiles)."""
        if len(self._sessions) + self._pending >= self._config.max_sessions:
            metrics.SESSIONS_REJECTED.labels(reason="full").inc()
            raise ApiError(503, f"server full: {self._config.max_sessions} sessions already running, "
                                "try again later")
        self._pending += 1
        pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[ice_server(url) for url in self._config.ice_servers]))
        session = Session(pc, target, self._pipeline.new_driver(), size, measure)
        try:
            self._wire(session)
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            except Exception as error:  # aiortc raises assorted errors for malformed SDP
                raise ApiError(400, f"invalid SDP offer: {error}") from error
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                raise ApiError(400, "the offer has no video track: send your camera (sendrecv video)")
            pc.addTrack(session.avatar_track)
            if before_answer is not None:
                before_answer(session)
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            await pc.close()
            raise
        finally:
            self._pending -= 1
        self._sessions[session.id] = session
        self._batcher.add(session)
        metrics.SESSIONS_ACTIVE.set(len(self._sessions))
        log.info("session %s opened (target %s, %dpx)", session.id, target.id, size)
        return session, add_bitrate_hints(pc.localDescription.sdp)

    def _wire(self, session: Session) -> None:
        pc = session.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self._spawn(self._consume(session, track))

        @pc.on("datachannel")
        def on_datachannel(channel) -> None:
            session.status_channel = channel
            for callback in session.on_channel_open:
                callback()

            @channel.on("message")
            def on_message(message) -> None:
                session.touch()
                try:
                    data = json.loads(message)
                except (TypeError, ValueError):
                    return
                if isinstance(data, dict) and data.get("type") == messages.PING:
                    channel.send(json.dumps({"type": messages.PONG, "t": data.get("t")}))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(session, f"connection {pc.connectionState}")

    async def _consume(self, session: Session, track: MediaStreamTrack) -> None:
        """Drain the inbound track as fast as it decodes; keep only the newest frame."""
        try:
            while True:
                frame = await track.recv()
                session.touch()
                session.frames_in += 1
                metrics.FRAMES_IN.inc()
                if session.slot.put(frame):
                    session.frames_dropped += 1
                    metrics.FRAMES_DROPPED.labels(reason="stale").inc()
                self._batcher.frame_arrived()
        except MediaStreamError:
            pass

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, session: Session, reason: str) -> None:
        if session.closed:
            return
        session.closed = True
        if self._sessions.pop(session.id, None) is None:
            return  # never opened (negotiation failed): open() closes its peer connection itself
        self._batcher.remove(session)
        metrics.SESSIONS_ACTIVE.set(len(self._sessions))
        log.info("session %s closed: %s", session.id, reason)
        session.feed.close()
        for callback in session.on_close:
            try:
                await callback(session)
            except Exception:  # one failing hook must not keep the peer connection open
                log.exception("on-close hook failed for session %s", session.id)
        await session.pc.close()

    async def close_all(self) -> None:
        if self._housekeeping:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for session in list(self._sessions.values()):
            await self.close(session, "server shutting down")

    async def _housekeep(self) -> None:
        """Status to every client twice a second; close sessions whose peer went silent."""
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if now - session.last_seen > self._config.session_idle_timeout_s:
                    await self.close(session, "no video or ping from the peer (timed out)")
                    continue
                try:
                    session.send_status()
                except Exception:  # a closing channel must not stop housekeeping
                    log.debug("status send failed for %s", session.id, exc_info=True)

"""The open sessions: limits (admission, per client), opening (server.negotiation), closing, lookup by id and token.

The jobs around a session live beside it: negotiation, the inbound frame pump (server.inbound), the status
channel's ping/pong (server.heartbeat) and housekeeping (server.housekeeping)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine

from aiortc.mediastreams import MediaStreamTrack

from models.pipeline import ReenactmentPipeline
from server import metrics
from server.admission import Admission, BusyError
from server.batcher import FrameBatcher
from server.client_limits import ClientLimits
from server.config import ServerConfig
from server.errors import ApiError
from server.heartbeat import serve_status_channel
from server.housekeeping import SessionLimits, housekeep
from server.inbound import pump_frames
from server.memory import FreedMemoryReleaser
from server.negotiation import answer_offer, new_peer_connection
from server.session import PreparedTarget, Session
from server.turn import IceSettings

log = logging.getLogger(__name__)
CLOSE_HOOK_TIMEOUT_S = 30.0  # a session's on-close hooks (leaving a Janus room: a few requests of up to 10 s each)
SHUTDOWN_HOOK_WAIT_S = 5.0  # how long shutdown waits for the hooks still running


class SessionRegistry:
    def __init__(self, config: ServerConfig, pipeline: ReenactmentPipeline, batcher: FrameBatcher,
                 admission: Admission) -> None:
        self._config = config
        self._ice = IceSettings.of(config)
        self._pipeline = pipeline
        self._batcher = batcher
        self._admission = admission
        self._clients = ClientLimits(config.max_sessions_per_client, config.max_offers_per_minute)
        self._limits = SessionLimits(config.video_idle_timeout_s, config.max_session_s)
        self._sessions: dict[str, Session] = {}
        self._pending = 0  # offers being negotiated, counted against the limit
        self._tasks: set[asyncio.Task] = set()
        self._closing: set[asyncio.Task] = set()  # on-close hooks still running (close() does not wait for them)
        self._memory = FreedMemoryReleaser()
        batcher.on_session_failed = self.close

    def __len__(self) -> int:
        return len(self._sessions)

    async def housekeeping(self) -> None:
        """Status, sessions without video or past their length closed, CPU samples for admission, idle clients
        forgotten, freed memory returned; supervised (server.supervisor)."""
        await housekeep(self._sessions.values, self.close, self._limits, self._tick)

    def _tick(self) -> None:
        self._admission.sample_cpu()
        self._clients.forget_idle()
        self._memory.tick()

    def input_rates(self) -> list[float | None]:
        """Each session's measured camera frame rate (None: not measured yet, as for one being negotiated)."""
        now = time.monotonic()
        return [session.fps_in(now) for session in self._sessions.values()] + [None] * self._pending

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
        self, offer_sdp: str, target: PreparedTarget, size: int, measure: bool, client: str,
        before_answer: Callable[[Session], None] | None = None,
    ) -> tuple[Session, str]:
        """Negotiate a new session for `client` (its address); `before_answer` may add more outbound tracks
        (room tiles)."""
        try:
            self._clients.check(client)  # 429 before 503: one client's excess is its own, not the server's
        except ApiError:
            metrics.SESSIONS_REJECTED.labels(reason="client").inc()
            raise
        try:
            self._admission.check(self.input_rates())
        except BusyError as busy:
            metrics.SESSIONS_REJECTED.labels(reason=busy.reason).inc()
            raise
        self._pending += 1
        pc = new_peer_connection(self._ice.for_server())  # fresh TURN credentials per session
        session = Session(pc, target, self._pipeline.new_driver(), size, measure)
        session.client = client
        self._clients.claim(client)
        try:
            self._wire(session)
            timeout = self._config.negotiation_timeout_s
            try:
                answer_sdp = await asyncio.wait_for(answer_offer(session, offer_sdp, before_answer), timeout)
            except TimeoutError as error:
                raise ApiError(504, f"the WebRTC negotiation did not finish in {timeout:g} s") from error
        except BaseException:
            self._clients.release(client)
            await pc.close()
            raise
        finally:
            self._pending -= 1
        session.negotiated()
        self._sessions[session.id] = session
        self._batcher.add(session)
        metrics.SESSIONS_ACTIVE.set(len(self._sessions))
        log.info("session %s opened (target %s, %dpx)", session.id, target.id, size)
        return session, answer_sdp

    def _wire(self, session: Session) -> None:
        pc = session.pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            # Only the camera (the first video the caller sends) is read; negotiation refuses the others.
            if track.kind == "video" and not session.receiving:
                session.receiving = True
                self._spawn(pump_frames(session, track, self._batcher))

        pc.on("datachannel", lambda channel: serve_status_channel(session, channel))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close(session, f"connection {pc.connectionState}")

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
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
        self._clients.release(session.client)
        self._memory.session_closed()
        metrics.SESSIONS_ACTIVE.set(len(self._sessions))
        log.info("session %s closed: %s", session.id, reason)
        session.send_closed(reason)
        session.feed.close()
        if session.on_close:
            # Room hooks may wait on Janus (detaches, the empty-room check), and close() runs on the batcher's
            # failure path and in housekeeping: they run on their own, bounded, so a slow Janus freezes no call.
            task = asyncio.create_task(self._run_close_hooks(session))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        await session.pc.close()

    async def _run_close_hooks(self, session: Session) -> None:
        for callback in session.on_close:
            try:
                await asyncio.wait_for(callback(session), CLOSE_HOOK_TIMEOUT_S)
            except TimeoutError:
                log.warning("on-close hook of session %s gave up after %g s", session.id, CLOSE_HOOK_TIMEOUT_S)
            except Exception:  # one failing hook must not stop the next
                log.exception("on-close hook failed for session %s", session.id)

    async def close_all(self) -> None:
        for session in list(self._sessions.values()):
            await self.close(session, "server shutting down")
        if self._closing:  # leaving rooms on the way out: briefly, a dead Janus must not hold the shutdown
            await asyncio.wait(set(self._closing), timeout=SHUTDOWN_HOOK_WAIT_S)

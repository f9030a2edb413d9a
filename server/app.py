"""HTTP API (signaling, targets, session control), demo page, health and metrics."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import options
from models.config import MAX_SIZE, MIN_SIZE, resolve_device
from models.pipeline import ReenactmentPipeline
from rtc.tuning import install_low_latency_jitter_buffer
from server import metrics
from server.admission import Admission
from server.batcher import BatcherConfig, FrameBatcher
from server.client_limits import CallRate
from server.config import ServerConfig
from server.decode_pool import DecodePool
from server.errors import ApiError
from server.health import health
from server.http_input import client_address, json_body, require_json
from server.janus import JanusClient, JanusError
from server.origin_guard import ServedHosts, origin_guard
from server.registry import SessionRegistry
from server.room_quota import UnjoinedRoomQuota
from server.rooms import RoomRegistry, TileTrack, clean_name
from server.security_headers import add_security_headers
from server.session import PreparedTarget, Session
from server.sfu_rooms import JanusRooms
from server.supervisor import Supervisor
from server.targets import TargetStore
from server.turn import IceSettings
from server.upload_form import read_photos
from server.uploads import UploadLimiter
from server.warmup import warm_up

log = logging.getLogger(__name__)
WEB_ROOT = Path(__file__).resolve().parent.parent / "client_web"

CONFIG = web.AppKey("config", ServerConfig)
REGISTRY = web.AppKey("registry", SessionRegistry)
TARGETS = web.AppKey("targets", TargetStore)
BATCHER = web.AppKey("batcher", FrameBatcher)
ROOMS = web.AppKey("rooms", RoomRegistry)
SFU = web.AppKey("sfu", JanusRooms)  # present with --sfu janus: rooms live in Janus instead of ROOMS
EXECUTOR = web.AppKey("executor", concurrent.futures.ThreadPoolExecutor)
ADMISSION = web.AppKey("admission", Admission)
SUPERVISOR = web.AppKey("supervisor", Supervisor)
UPLOADS = web.AppKey("uploads", UploadLimiter)
DECODES = web.AppKey("decodes", DecodePool)
ICE = web.AppKey("ice", IceSettings)
ROOM_QUOTA = web.AppKey("room_quota", UnjoinedRoomQuota)
# Read-only and internal: the proxies in deploy/ do not route them, and the Host check lets probes
# (Kubernetes names the pod by IP, Prometheus by its target) reach the first two under any name.
PROBE_PATHS = ("/healthz", "/metrics")
INTERNAL_PATHS = (*PROBE_PATHS, "/api/info")
ICE_RATE = web.AppKey("ice_rate", CallRate)


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every error leaves as JSON {"error": "..."} with a fitting status; nothing leaks a traceback."""
    try:
        return await handler(request)
    except ApiError as error:
        return web.json_response({"error": error.message}, status=error.status, headers=error.headers)
    except JanusError as error:  # --sfu janus: Janus refused or is unreachable (details in the log, not the answer)
        log.warning("%s %s: %s", request.method, request.path, error)
        return web.json_response({"error": "the room service is unavailable; try again shortly"}, status=503,
                                 headers={"Retry-After": "5"})
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return web.json_response({"error": error.reason}, status=error.status)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal server error"}, status=500)


async def _json_body(request: web.Request) -> dict:
    return await json_body(request, request.app[CONFIG].max_json_bytes)


def _client(request: web.Request) -> str:
    """The caller's address for per-client limits (behind a trusted proxy: the one it forwarded)."""
    return client_address(request, request.app[CONFIG].trust_forwarded_for)


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.startswith("Bearer ") else None


@dataclass(frozen=True)
class OfferRequest:
    sdp: str
    target: PreparedTarget
    size: int
    measure: bool


async def _parse_offer(request: web.Request, body: dict) -> OfferRequest:
    sdp, kind = body.get("sdp"), body.get("type")
    if not isinstance(sdp, str) or not sdp.strip() or kind != "offer":
        raise ApiError(400, 'expected {"sdp": "<offer SDP>", "type": "offer", "target": "<target id>"}')
    config = request.app[CONFIG]
    size = body.get("size", config.output_size)
    if not isinstance(size, int) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE or size % 2:
        raise ApiError(400, f"size must be an even number of pixels between {MIN_SIZE} and {MAX_SIZE}")
    measure = body.get("measure", False)
    if not isinstance(measure, bool):
        raise ApiError(400, "measure must be true or false")
    target_id = body.get("target", "astronaut")
    if not isinstance(target_id, str):
        raise ApiError(400, "target must be a target id string")
    return OfferRequest(sdp, await request.app[TARGETS].get(target_id), size, measure)


def _answer(request: web.Request, session: Session, answer_sdp: str) -> dict:
    config = request.app[CONFIG]
    # What the demo page shows with its stats (/api/info is internal: the proxies do not route it).
    server = {"generator": config.generator, "landmarks": config.landmarks, "device": resolve_device(config.device)}
    return {"sdp": answer_sdp, "type": "answer", "session_id": session.id, "token": session.token,
            "target": request.app[TARGETS].describe(session.target), "server": server}


async def offer(request: web.Request) -> web.Response:
    parsed = await _parse_offer(request, await _json_body(request))
    session, answer_sdp = await request.app[REGISTRY].open(parsed.sdp, parsed.target, parsed.size, parsed.measure,
                                                           _client(request))
    return web.json_response(_answer(request, session, answer_sdp))


async def create_room(request: web.Request) -> web.Response:
    require_json(request)  # no body, but the header keeps a cross-site page to a CORS preflight
    client = client_address(request, request.app[CONFIG].trust_forwarded_for)
    with request.app[ROOM_QUOTA].creating(client) as created:
        room = await request.app[SFU].create() if SFU in request.app else request.app[ROOMS].create().describe()
        created(room["room_id"])
    return web.json_response(room, status=201)


async def get_room(request: web.Request) -> web.Response:
    if SFU in request.app:
        return web.json_response(await request.app[SFU].describe(request.match_info["room_id"]))
    return web.json_response(request.app[ROOMS].get(request.match_info["room_id"]).describe())


async def join_room(request: web.Request) -> web.Response:
    if SFU in request.app:
        return await _join_sfu_room(request)
    rooms = request.app[ROOMS]
    room = rooms.get(request.match_info["room_id"])
    body = await _json_body(request)
    name = clean_name(body.get("name"))
    parsed = await _parse_offer(request, body)
    tiles: dict[str, TileTrack] = {}

    def add_tiles(session: Session) -> None:
        tiles.update(rooms.tiles_for(session))

    with rooms.reserve_place(room):  # held while negotiating, so concurrent joins cannot overfill
        session, answer_sdp = await request.app[REGISTRY].open(
            parsed.sdp, parsed.target, parsed.size, parsed.measure, _client(request), before_answer=add_tiles)
        participant = rooms.join(room, session, name, tiles)
    request.app[ROOM_QUOTA].joined(room.id)
    return web.json_response({**_answer(request, session, answer_sdp), "room_id": room.id,
                              "participant_id": participant.id, "tiles": len(tiles)})


async def _join_sfu_room(request: web.Request) -> web.Response:
    """The caller's call is negotiated with us as a one-to-one call; then its avatar is published into Janus.
    The others' avatars come from Janus through /api/sessions/<id>/watch (the roster names their feeds)."""
    sfu, token = request.app[SFU], request.match_info["room_id"]
    body = await _json_body(request)
    name = clean_name(body.get("name"))
    parsed = await _parse_offer(request, body)
    await sfu.check_place(token)
    with sfu.reserve(token):
        registry = request.app[REGISTRY]
        session, answer_sdp = await registry.open(parsed.sdp, parsed.target, parsed.size, parsed.measure,
                                                  _client(request))
        try:
            publisher = await sfu.join(token, session, name)
        except BaseException:
            await registry.close(session, "could not join the room")
            raise
    request.app[ROOM_QUOTA].joined(token)
    return web.json_response({**_answer(request, session, answer_sdp), "room_id": token, "sfu": "janus",
                              "participant_id": publisher.id, "tiles": 0})


def _sfu_session(request: web.Request) -> tuple[JanusRooms, Session]:
    if SFU not in request.app:
        raise ApiError(409, "this server relays rooms itself (no --sfu): tiles come on the call")
    return request.app[SFU], request.app[REGISTRY].get(request.match_info["session_id"], _bearer_token(request))


async def watch_feed(request: web.Request) -> web.Response:
    sfu, session = _sfu_session(request)
    body = await _json_body(request)
    return web.json_response(await sfu.watch(session, body.get("feed")), status=201)


async def answer_watch(request: web.Request) -> web.Response:
    sfu, session = _sfu_session(request)
    body = await _json_body(request)
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip() or body.get("type") != "answer":
        raise ApiError(400, 'expected {"sdp": "<answer SDP>", "type": "answer"}')
    await sfu.start_watch(session, request.match_info["watch_id"], sdp)
    return web.json_response({"watching": True})


async def stop_watch(request: web.Request) -> web.Response:
    sfu, session = _sfu_session(request)
    await sfu.stop_watch(session, request.match_info["watch_id"])
    return web.json_response({"watching": False})


async def switch_target(request: web.Request) -> web.Response:
    session = request.app[REGISTRY].get(request.match_info["session_id"], _bearer_token(request))
    body = await _json_body(request)
    target_id = body.get("target")
    if not isinstance(target_id, str):
        raise ApiError(400, 'expected {"target": "<target id>"}')
    session.target = await request.app[TARGETS].get(target_id)
    if SFU in request.app:
        await request.app[SFU].retarget(session)  # the room's roster (Janus's display) names the new target
    return web.json_response({"target": request.app[TARGETS].describe(session.target)})


async def calibrate(request: web.Request) -> web.Response:
    session = request.app[REGISTRY].get(request.match_info["session_id"], _bearer_token(request))
    require_json(request)
    session.request_calibration()  # the batcher hands it to the pipeline with the next frame
    return web.json_response({"calibrating": True})


async def close_session(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    session = registry.get(request.match_info["session_id"], _bearer_token(request))
    await registry.close(session, "closed by the client")
    return web.json_response({"closed": True})


async def list_targets(request: web.Request) -> web.Response:
    return web.json_response({"targets": request.app[TARGETS].listing()})


async def target_image(request: web.Request) -> web.Response:
    jpeg = await request.app[TARGETS].thumbnail_jpeg(request.match_info["target_id"])
    return web.Response(body=jpeg, content_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})


async def upload_target(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    with request.app[UPLOADS].slot(client_address(request, config.trust_forwarded_for)):
        form = await read_photos(request, config.max_upload_photos, config.max_upload_bytes,
                                 request.app[DECODES].decode)
        target, report = await request.app[TARGETS].add_upload(form.photos, form.faces)
    return web.json_response({**request.app[TARGETS].describe(target), **report}, status=201)


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    status, body = health(app[BATCHER], app[SUPERVISOR], len(app[REGISTRY]), app[CONFIG].stuck_after_s)
    return web.json_response({**body, "admission": app[ADMISSION].budget(app[REGISTRY].input_rates()).as_dict()},
                             status=status)


async def server_info(request: web.Request) -> web.Response:
    """Every option but the private ones (options.info), with the device `auto` resolved to."""
    config = request.app[CONFIG]
    return web.json_response({**options.info(config), "device": resolve_device(config.device)})


async def ice_servers(request: web.Request) -> web.Response:
    """The caller's RTCPeerConnection iceServers: STUN, and TURN with credentials minted for this request."""
    request.app[ICE_RATE].check_and_count(client_address(request, request.app[CONFIG].trust_forwarded_for),
                                          "ICE server requests")
    # no-store: a cached answer would hand out credentials that expire (or are shared between callers).
    return web.json_response({"iceServers": request.app[ICE].for_browser()}, headers={"Cache-Control": "no-store"})


async def prometheus_metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html")


def build_app(config: ServerConfig) -> web.Application:
    install_low_latency_jitter_buffer()
    pipeline = ReenactmentPipeline(config)  # it takes its own options out of the server's
    # One model thread for live frames. Targets are prepared on a thread of their own: an upload of 8 photos
    # with small faces takes seconds (photo detection at high resolution) and would freeze every live call.
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
    preparer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare")
    batcher = FrameBatcher(pipeline, BatcherConfig(config.max_batch, config.max_wait_ms), executor)
    guard = origin_guard(ServedHosts.of(config.public_host, config.host), config.allowed_origins, PROBE_PATHS)
    app = web.Application(middlewares=[json_errors, guard], client_max_size=config.max_upload_bytes + 1024 * 1024)
    app.on_response_prepare.append(add_security_headers)
    app[CONFIG] = config
    app[EXECUTOR] = executor
    app[BATCHER] = batcher
    app[ADMISSION] = Admission(batcher, config.max_sessions, config.target_fps, config.admission_headroom,
                               measured=config.admission == "measured")
    app[REGISTRY] = SessionRegistry(config, pipeline, batcher, app[ADMISSION])
    app[ROOMS] = RoomRegistry(config.room_size, config.max_rooms, config.room_unjoined_ttl_s)
    app[ROOM_QUOTA] = UnjoinedRoomQuota(config.max_unjoined_rooms_per_client, config.room_unjoined_ttl_s)
    app[TARGETS] = TargetStore(pipeline.prepare_target, preparer, config.max_uploaded_targets)
    app[SUPERVISOR] = Supervisor()
    app[UPLOADS] = UploadLimiter(config.max_uploads_per_client)
    app[DECODES] = DecodePool(config.decode_threads, config.decode_queue)
    app[ICE] = IceSettings.of(config)
    app[ICE_RATE] = CallRate(config.ice_servers_per_minute)
    if config.sfu == "janus":
        app[SFU] = JanusRooms(JanusClient(config.sfu_url, config.sfu_secret), config.room_key_secret,
                              config.room_size, config.max_rooms, app[ICE], config.sfu_recover_s,
                              config.room_unjoined_ttl_s)

    async def on_startup(app: web.Application) -> None:
        # Networks load now, not inside the first caller's batch; the warm-up also gives admission its first cost.
        target = await app[TARGETS].get(app[TARGETS].listing()[0]["id"])
        seconds = await asyncio.get_running_loop().run_in_executor(executor, warm_up, pipeline, target.face)
        app[ADMISSION].warmup_s_per_frame = seconds
        log.info("warm-up: %.1f ms per frame at batch 1", 1000 * seconds)
        app[SUPERVISOR].start("frame-batcher", app[BATCHER].run)
        app[SUPERVISOR].start("session-housekeeping", app[REGISTRY].housekeeping)
        if SFU in app:
            app[SUPERVISOR].start("sfu-rooms", app[SFU].run)

    async def on_shutdown(app: web.Application) -> None:
        await app[REGISTRY].close_all()  # room participants leave (and unpublish) on the way
        if SFU in app:
            await app[SFU].close()
        await app[SUPERVISOR].stop()
        app[EXECUTOR].shutdown(wait=False, cancel_futures=True)
        preparer.shutdown(wait=False, cancel_futures=True)
        app[DECODES].shutdown()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/", index)
    app.router.add_static("/static", WEB_ROOT)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus_metrics)
    app.router.add_get("/api/info", server_info)
    app.router.add_get("/api/ice-servers", ice_servers)
    app.router.add_get("/api/targets", list_targets)
    app.router.add_post("/api/targets", upload_target)
    app.router.add_get("/api/targets/{target_id}/image", target_image)
    app.router.add_post("/api/offer", offer)
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/rooms/{room_id}", get_room)
    app.router.add_post("/api/rooms/{room_id}/join", join_room)
    app.router.add_post("/api/sessions/{session_id}/target", switch_target)
    app.router.add_post("/api/sessions/{session_id}/calibrate", calibrate)
    app.router.add_delete("/api/sessions/{session_id}", close_session)
    app.router.add_post("/api/sessions/{session_id}/watch", watch_feed)
    app.router.add_post("/api/sessions/{session_id}/watch/{watch_id}", answer_watch)
    app.router.add_delete("/api/sessions/{session_id}/watch/{watch_id}", stop_watch)
    return app

"""Avatar rooms through a Janus VideoRoom (--sfu janus): rooms that span server processes.

Each participant's avatar (never the camera) is published once into the room's Janus VideoRoom over a
server-side peer connection: one encode whatever the number of viewers. Viewers subscribe straight from
Janus: the caller asks our API to watch a feed (POST /api/sessions/<id>/watch), the server joins Janus as
that caller's subscriber and hands back Janus's offer; the caller's answer goes back the same way. So the
caller's browser only talks to our API (Janus's API, its secret and the room pins stay server-side) and
the media flows Janus -> caller directly.

Shared state lives in Janus only: the Janus room id and pin are derived from the room link with the
deployment's shared secret (every server computes the same ones), the description carries our prefix and
the creation time (for expiry), and who is in the room is Janus's participant list, whose `display` holds
each participant's id, name and target. No cluster protocol of our own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from rtc import messages
from rtc.ice_scope import filter_sdp_candidates
from server import metrics
from server.errors import ApiError
from server.janus import JanusClient, JanusError
from server.negotiation import new_peer_connection
from server.session import AvatarTrack, Session
from server.sfu_keys import RoomKeys, room_secret
from server.turn import IceSettings

log = logging.getLogger(__name__)
PREFIX = "marionette"
NO_SUCH_ROOM, ROOM_EXISTS, NO_SUCH_FEED, ROOM_FULL = 426, 427, 428, 432
REFRESH_EVENTS = ("publishers", "unpublished", "leaving", "joining")


@dataclass
class Publisher:
    """A participant who joined through this server: their Janus publisher handle and media connection."""

    id: str
    name: str
    session: Session
    keys: RoomKeys
    feed: int
    handle: int | None = None
    private_id: int | None = None
    pc: RTCPeerConnection | None = None
    track: AvatarTrack | None = None  # this connection's subscription to the session's avatar frames
    watches: dict[str, int] = field(default_factory=dict)  # watch id -> Janus subscriber handle
    watches_pending: int = 0  # watch requests being set up in Janus: they hold a place under the limit
    last_roster: str = ""

    def display(self) -> str:
        return json.dumps({"id": self.id, "name": self.name, "target": self.session.target.id})


class JanusRooms:
    def __init__(self, client: JanusClient, key: str, room_size: int, max_rooms: int,
                 ice: IceSettings, recover_s: float = 30.0, unjoined_ttl_s: float = 600.0) -> None:
        self._janus = client
        self._key = key
        self._room_size = room_size
        self._max_rooms = max_rooms
        self._ice = ice
        self._unjoined_ttl_s = unjoined_ttl_s
        self._control: int | None = None  # handle for the synchronous requests
        self._local: dict[str, dict[str, Publisher]] = {}  # room token -> participants joined here
        self._by_session: dict[str, Publisher] = {}
        self._joining: dict[str, int] = {}
        self._refreshing: set[str] = set()
        self._recover_s = recover_s
        self._recovery: asyncio.Task | None = None
        client.on_lost.append(self._on_janus_lost)

    # ---- rooms ------------------------------------------------------------------------------------

    async def create(self) -> dict:
        rooms = await self._our_rooms()
        if len(rooms) >= self._max_rooms:
            raise ApiError(503, f"too many open rooms ({self._max_rooms}); try again later")
        keys = RoomKeys.of(secrets.token_urlsafe(12), self._key)  # the join link is the only key: unguessable
        await self._create_room(keys)
        return self._describe(keys, [])

    async def _create_room(self, keys: RoomKeys) -> None:
        await self._request({
            "request": "create", "room": keys.number, "description": f"{PREFIX} {int(time.time())}",
            "secret": keys.secret, "pin": keys.pin, "publishers": self._room_size, "is_private": False,
            "videocodec": "vp8", "audiocodec": "opus", "permanent": False})
        metrics.SFU_ROOMS_CREATED.inc()

    async def describe(self, token: str) -> dict:
        keys = RoomKeys.of(token, self._key)
        return self._describe(keys, await self._participants(keys))

    def _describe(self, keys: RoomKeys, participants: list[dict]) -> dict:
        return {"room_id": keys.token, "join_url": f"/?room={keys.token}", "max_participants": self._room_size,
                "sfu": "janus", "participants": [{"id": p["id"], "name": p["name"]} for p in participants]}

    async def _participants(self, keys: RoomKeys) -> list[dict]:
        """Everyone in the Janus room (whichever server they joined through): id, name, target, feed."""
        try:
            data = await self._request({"request": "listparticipants", "room": keys.number})
        except JanusError as error:
            if error.code == NO_SUCH_ROOM:
                raise ApiError(404, "unknown or closed room: ask for a new link") from None
            raise
        found = []
        for entry in data.get("participants", []):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                shown = json.loads(entry.get("display", ""))
                found.append({"id": str(shown["id"])[:16], "name": str(shown["name"]), "target": shown.get("target"),
                              "feed": entry["id"] if entry.get("publisher") else None})
        return found

    async def _our_rooms(self) -> list[dict]:
        data = await self._request({"request": "list"})
        return [room for room in data.get("list", []) if str(room.get("description", "")).startswith(PREFIX + " ")]

    async def expire_unjoined(self) -> None:
        """Destroy our Janus rooms nobody joined within the TTL (the creation time is in the description;
        the secret derives from the room number, so any of our servers may do it)."""
        now = time.time()
        for room in await self._our_rooms():
            with contextlib.suppress(ValueError, IndexError, JanusError):
                created = float(str(room["description"]).split()[1])
                if room.get("num_participants", 0) == 0 and now - created > self._unjoined_ttl_s:
                    number = int(room["room"])
                    secret = room_secret(self._key, number)
                    await self._request({"request": "destroy", "room": number, "secret": secret})

    # ---- joining and leaving ----------------------------------------------------------------------

    async def join(self, token: str, session: Session, name: str) -> Publisher:
        """Publish the session's avatar into the room (after the caller's own negotiation succeeded)."""
        keys = RoomKeys.of(token, self._key)
        publisher = Publisher(secrets.token_urlsafe(6), name, session, keys, feed=secrets.randbits(48))
        try:
            await self._publish(publisher)
        except JanusError as error:
            await self._unpublish(publisher)
            metrics.SFU_ERRORS.labels(kind="publish").inc()
            if error.code == ROOM_FULL:
                raise ApiError(409, f"room full: {self._room_size} of {self._room_size} places taken") from None
            if error.code == NO_SUCH_ROOM:
                raise ApiError(404, "unknown or closed room: ask for a new link") from None
            raise ApiError(503, "the room service (Janus) is unavailable; try again shortly",
                           {"Retry-After": "5"}) from None
        if session.closed:  # hung up while we published: its close hooks have run already
            await self._unpublish(publisher)
            raise ApiError(409, "the call ended while joining the room")
        self._local.setdefault(token, {})[publisher.id] = publisher
        self._by_session[session.id] = publisher
        session.on_close.append(lambda _: self.leave(publisher))
        session.on_channel_open.append(lambda: self._send_roster_soon(token))
        self._update_metrics()
        self._send_roster_soon(token)
        log.info("room %s: %s publishes feed %d", token[:6], publisher.id, publisher.feed)
        return publisher

    async def check_place(self, token: str) -> None:
        """404 for an unknown room, 409 when Janus already lists a full room (Janus enforces it too)."""
        taken = len(await self._participants(RoomKeys.of(token, self._key))) + self._joining.get(token, 0)
        if taken >= self._room_size:
            raise ApiError(409, f"room full: {self._room_size} of {self._room_size} places taken")

    @contextlib.contextmanager
    def reserve(self, token: str):
        self._joining[token] = self._joining.get(token, 0) + 1
        try:
            yield
        finally:
            self._joining[token] -= 1
            if not self._joining[token]:
                del self._joining[token]

    async def _publish(self, publisher: Publisher) -> None:
        keys = publisher.keys
        publisher.handle = await self._janus.attach(lambda event: self._on_event(keys.token, event))
        joined, _ = await self._janus.message(publisher.handle, {
            "request": "join", "ptype": "publisher", "room": keys.number, "pin": keys.pin,
            "id": publisher.feed, "display": publisher.display()})
        publisher.private_id = joined.get("private_id")
        pc = publisher.pc = new_peer_connection(self._ice.for_server())  # the same TURN as the callers, if any
        publisher.track = publisher.session.feed.subscribe()  # the avatar, never the camera
        pc.addTransceiver(publisher.track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        _, jsep = await self._janus.message(
            publisher.handle, {"request": "publish", "audio": False, "video": True, "data": False},
            {"type": "offer", "sdp": pc.localDescription.sdp, "trickle": False})
        if jsep is None:
            raise JanusError(0, "Janus answered the publish without SDP")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type=jsep["type"]))

    async def leave(self, publisher: Publisher) -> None:
        token = publisher.keys.token
        local = self._local.get(token, {})
        if local.pop(publisher.id, None) is None:
            return
        if not local:
            self._local.pop(token, None)
        self._by_session.pop(publisher.session.id, None)
        await self._unpublish(publisher)
        self._update_metrics()
        self._send_roster_soon(token)
        if token not in self._local:
            await self._destroy_if_empty(publisher.keys)

    async def _destroy_if_empty(self, keys: RoomKeys) -> None:
        """The last one out destroys the room. Janus drops a detached participant from its list a moment
        later (and two may leave at once), so look again briefly before deciding the room is still in use."""
        for _ in range(4):
            with contextlib.suppress(JanusError, ApiError):
                if keys.token in self._local or self._joining.get(keys.token):
                    return  # someone joined here meanwhile
                if not await self._participants(keys):
                    await self._request({"request": "destroy", "room": keys.number, "secret": keys.secret})
                    log.info("room %s: empty, destroyed", keys.token[:6])
                    return
            await asyncio.sleep(0.5)

    async def _unpublish(self, publisher: Publisher) -> None:
        """Detaching the handles makes Janus unpublish the feed and tell the others (they refresh)."""
        for handle in publisher.watches.values():
            await self._janus.detach(handle)
        publisher.watches.clear()
        if publisher.handle is not None:
            await self._janus.detach(publisher.handle)
            publisher.handle = None
        if publisher.track is not None:
            publisher.track.stop()  # else the feed keeps handing it frames
            publisher.track = None
        if publisher.pc is not None:
            await publisher.pc.close()
            publisher.pc = None

    async def retarget(self, session: Session) -> None:
        """After a target switch: the display Janus lists (what every roster reads) names the new target."""
        publisher = self._by_session.get(session.id)
        if publisher is None or publisher.handle is None:
            return
        try:
            await self._janus.message(publisher.handle, {"request": "configure", "display": publisher.display()})
        except JanusError as error:  # the switch itself worked; the roster keeps the old target name
            log.warning("room %s: display update failed: %s", publisher.keys.token[:6], error)
        self._send_roster_soon(publisher.keys.token)

    # ---- watching others' feeds -------------------------------------------------------------------

    def publisher_of(self, session: Session) -> Publisher:
        publisher = self._by_session.get(session.id)
        if publisher is None:
            raise ApiError(409, "this session is not in a room")
        return publisher

    async def watch(self, session: Session, feed: object) -> dict:
        """Subscribe the caller to one feed of their room: Janus's offer for the caller to answer."""
        publisher = self.publisher_of(session)
        if not isinstance(feed, int) or isinstance(feed, bool):
            raise ApiError(400, 'expected {"feed": <feed number from the roster>}')
        if feed == publisher.feed:
            raise ApiError(400, "that feed is your own avatar: it already comes on your call")
        if len(publisher.watches) + publisher.watches_pending >= self._room_size - 1:
            raise ApiError(409, f"at most {self._room_size - 1} feeds can be watched at once")
        publisher.watches_pending += 1  # taken before the first await: concurrent requests see it
        try:
            handle = await self._janus.attach()
            jsep = await self._join_as_subscriber(publisher, handle, feed)
            if self._by_session.get(session.id) is not publisher or publisher.handle is None:
                # The caller left (or their room ended, or Janus restarted) while Janus set this up: nobody
                # would ever detach this handle.
                await self._janus.detach(handle)
                raise ApiError(409, "the call left the room while the watch was being set up")
        finally:
            publisher.watches_pending -= 1
        watch_id = secrets.token_urlsafe(6)
        publisher.watches[watch_id] = handle
        metrics.SFU_SUBSCRIPTIONS.inc()
        self._update_metrics()
        return {"watch_id": watch_id, "feed": feed, "sdp": jsep["sdp"], "type": jsep["type"]}

    async def _join_as_subscriber(self, publisher: Publisher, handle: int, feed: int) -> dict:
        """Janus's offer for `feed` on a fresh subscriber handle (detached again on failure)."""
        try:
            _, jsep = await self._janus.message(handle, {
                "request": "join", "ptype": "subscriber", "room": publisher.keys.number, "pin": publisher.keys.pin,
                "streams": [{"feed": feed}], "private_id": publisher.private_id})
        except JanusError as error:
            await self._janus.detach(handle)
            if error.code in (NO_SUCH_FEED, NO_SUCH_ROOM):
                raise ApiError(404, "no such feed in this room (it may have just left)") from None
            metrics.SFU_ERRORS.labels(kind="subscribe").inc()
            raise ApiError(503, "the room service (Janus) is unavailable; try again shortly",
                           {"Retry-After": "5"}) from None
        if jsep is None:
            await self._janus.detach(handle)
            raise ApiError(404, "that feed has no media yet; try again when the roster shows it again")
        return jsep

    async def start_watch(self, session: Session, watch_id: str, answer_sdp: str) -> None:
        handle = self._watch_handle(session, watch_id)
        try:
            # Janus checks every candidate it is given: only those within this server's ICE scope reach it.
            await self._janus.message(handle, {"request": "start"},
                                      {"type": "answer", "sdp": filter_sdp_candidates(answer_sdp)})
        except JanusError as error:
            metrics.SFU_ERRORS.labels(kind="subscribe").inc()
            raise ApiError(400 if error.code else 503, f"Janus refused the answer: {error.reason[:80]}") from None

    async def stop_watch(self, session: Session, watch_id: str) -> None:
        handle = self._watch_handle(session, watch_id)
        del self.publisher_of(session).watches[watch_id]
        await self._janus.detach(handle)
        self._update_metrics()

    def _watch_handle(self, session: Session, watch_id: str) -> int:
        handle = self.publisher_of(session).watches.get(watch_id)
        if handle is None:
            raise ApiError(404, "unknown watch")
        return handle

    # ---- roster -----------------------------------------------------------------------------------

    def _on_event(self, token: str, event: dict[str, Any]) -> None:
        data = event.get("plugindata", {}).get("data", {})
        if any(key in data for key in REFRESH_EVENTS):
            self._send_roster_soon(token)

    def _send_roster_soon(self, token: str) -> None:
        if token in self._refreshing or token not in self._local:
            return
        self._refreshing.add(token)
        asyncio.get_running_loop().create_task(self._send_roster(token))

    async def _send_roster(self, token: str, force: bool = False) -> None:
        try:
            await asyncio.sleep(0.05)  # several events of one change: one list request
            local = self._local.get(token)
            if not local:
                return
            everyone = await self._participants(next(iter(local.values())).keys)
            for publisher in list(local.values()):
                roster = json.dumps({"type": messages.ROSTER, "room_id": token, "you": publisher.id, "sfu": "janus",
                                     "participants": [{**p, "mid": None} for p in everyone]})
                if force or roster != publisher.last_roster:
                    publisher.last_roster = roster if self._send(publisher.session, roster) else ""
        except (JanusError, ApiError) as error:
            unreachable = isinstance(error, JanusError) and error.code == 0  # already said once by the lost hook
            log.log(logging.DEBUG if unreachable else logging.WARNING, "room %s: roster refresh failed: %s",
                    token[:6], error)
        finally:
            self._refreshing.discard(token)

    @staticmethod
    def _send(session: Session, text: str) -> bool:
        channel = session.status_channel
        if channel is None or channel.readyState != "open":
            return False
        with contextlib.suppress(Exception):  # a closing channel: the next roster will do
            channel.send(text)
            return True
        return False

    async def run(self) -> None:
        """Housekeeping: rosters re-checked every 2 s (a missed event heals), unjoined rooms expired."""
        last_expiry = time.monotonic()
        while True:
            await asyncio.sleep(2.0)
            for token in list(self._local):
                self._send_roster_soon(token)
            if time.monotonic() - last_expiry > 30:
                last_expiry = time.monotonic()
                with contextlib.suppress(JanusError):
                    await self.expire_unjoined()

    # ---- faults -----------------------------------------------------------------------------------

    def _on_janus_lost(self, reason: str) -> None:
        """Janus went away or restarted: its rooms, feeds and handles are gone. Participants are told, and
        re-published (new feeds into the same derived room) once Janus answers again within the recovery
        window; past it their rooms end cleanly with a message. Their own calls go on either way."""
        metrics.SFU_ERRORS.labels(kind="janus_lost").inc()
        self._control = None
        for publisher in self._all():
            publisher.handle, publisher.last_roster = None, ""
            publisher.watches.clear()  # gone with the Janus session
            if publisher.track is not None:
                publisher.track.stop()
                publisher.track = None
            if publisher.pc is not None:
                asyncio.get_running_loop().create_task(publisher.pc.close())
                publisher.pc = None
            self._send(publisher.session, json.dumps({
                "type": messages.ROOM_STATUS, "room_id": publisher.keys.token, "state": "reconnecting",
                "reason": "the room service restarted: reconnecting"}))
        self._update_metrics()
        log.warning("Janus lost (%s): %d participants to re-publish", reason, len(self._by_session))
        if self._by_session and (self._recovery is None or self._recovery.done()):
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        deadline = time.monotonic() + self._recover_s
        while self._by_session:
            try:
                for publisher in [p for p in self._all() if p.handle is None]:
                    await self._republish(publisher)
                break
            except JanusError as error:
                if time.monotonic() > deadline:
                    self._end_all(f"Janus did not come back in {self._recover_s:g} s ({error.reason})")
                    return
                await asyncio.sleep(1.0)
        self._update_metrics()
        for token in list(self._local):
            self._send_roster_soon(token)

    async def _republish(self, publisher: Publisher) -> None:
        await self._unpublish(publisher)  # what a failed earlier try left
        try:
            await self._create_room(publisher.keys)
        except JanusError as error:
            if error.code != ROOM_EXISTS:  # another participant (or server) re-created it first
                raise
        publisher.feed = secrets.randbits(48)  # the old feed died with Janus; watchers follow the roster
        await self._publish(publisher)
        if self._by_session.get(publisher.session.id) is not publisher:  # left meanwhile
            await self._unpublish(publisher)
            return
        self._send(publisher.session, json.dumps({"type": messages.ROOM_STATUS, "room_id": publisher.keys.token,
                                                  "state": "restored"}))
        log.info("room %s: %s re-published as feed %d", publisher.keys.token[:6], publisher.id, publisher.feed)

    def _end_all(self, reason: str) -> None:
        publishers = self._all()
        self._local.clear()
        self._by_session.clear()
        for publisher in publishers:
            self._send(publisher.session, json.dumps({
                "type": messages.ROOM_CLOSED, "room_id": publisher.keys.token,
                "reason": "the room service is unavailable: the room has ended, create a new one"}))
        self._update_metrics()
        log.warning("rooms ended: %s", reason)

    def _all(self) -> list[Publisher]:
        return [p for local in self._local.values() for p in local.values()]

    async def _request(self, body: dict[str, Any]) -> dict:
        if self._control is None:
            self._control = await self._janus.attach()
        try:
            return await self._janus.request(self._control, body)
        except JanusError as error:
            if error.code == 0:
                metrics.SFU_ERRORS.labels(kind="request").inc()
            raise

    def _update_metrics(self) -> None:
        metrics.ROOMS_OPEN.set(len(self._local))  # rooms with participants joined through this server
        metrics.ROOM_PARTICIPANTS.set(len(self._by_session))
        metrics.SFU_PUBLISHERS.set(sum(p.pc is not None for p in self._by_session.values()))
        metrics.SFU_WATCHES.set(sum(len(p.watches) for p in self._by_session.values()))

    async def close(self) -> None:
        for publisher in list(self._by_session.values()):
            await self.leave(publisher)
        await self._janus.close()

"""Avatar video rooms: every participant sees the others as their chosen targets, never their cameras.

Each participant's avatar is generated once per frame (their session's AvatarFeed) and handed to
every viewer. A viewer's peer connection carries one tile per possible other participant: the
client offers (room size - 1) receive-only video transceivers, and the server fills and empties those
tiles as people join and leave (RTCRtpSender.replaceTrack), telling each client which tile (mid)
shows whom in a "roster" message on the status channel. aiortc has no removeTrack and limited
renegotiation, so fixed tiles keep joins and leaves free of SDP round trips.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtc import messages
from server import metrics
from server.errors import ApiError
from server.session import AvatarTrack, Session

log = logging.getLogger(__name__)
VIDEO_CLOCK = 90_000
NAME_MAX = 40


class TileTrack(MediaStreamTrack):
    """One tile of one viewer: relays whichever avatar it is given, on its own continuous clock.

    Frames are shared between viewers, so they are copied (256x256 yuv: ~0.1 ms) before re-stamping:
    pts must stay monotonic for this sender when the tile switches from one participant to another.
    """

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._source: AvatarTrack | None = None
        self._changed = asyncio.Event()
        self._start = time.monotonic()
        self._last_pts = -1

    def show(self, source: AvatarTrack | None) -> None:
        if self._source is not None:
            self._source.stop()
        self._source = source
        self._changed.set()

    @property
    def showing(self) -> bool:
        return self._source is not None

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            source = self._source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                frame = await source.recv()
            except MediaStreamError:
                if self._source is source:
                    self._source = None  # the participant left: wait for the next one
                continue
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(), format=frame.format.name)
            pts = max(int((time.monotonic() - self._start) * VIDEO_CLOCK), self._last_pts + 1)
            out.pts, out.time_base, self._last_pts = pts, fractions.Fraction(1, VIDEO_CLOCK), pts
            return out

    def stop(self) -> None:
        self.show(None)
        super().stop()


@dataclass
class Participant:
    id: str
    name: str
    session: Session
    tiles: dict[str, TileTrack]  # mid -> tile
    showing: dict[str, str] = field(default_factory=dict)  # mid -> participant id shown there

    def free_tile(self) -> str | None:
        return next((mid for mid in self.tiles if mid not in self.showing), None)


class Room:
    def __init__(self, max_participants: int) -> None:
        self.id = secrets.token_urlsafe(12)  # the join link is the only key: unguessable
        self.max_participants = max_participants
        self.participants: dict[str, Participant] = {}
        self.joining = 0  # places reserved by offers still being negotiated
        self.created = time.monotonic()

    def describe(self) -> dict:
        return {"room_id": self.id, "join_url": f"/?room={self.id}", "max_participants": self.max_participants,
                "participants": [{"id": p.id, "name": p.name} for p in self.participants.values()]}

    def add(self, participant: Participant) -> None:
        for other in self.participants.values():
            self._show(viewer=other, shown=participant)
            self._show(viewer=participant, shown=other)
        self.participants[participant.id] = participant

    def remove(self, leaving: Participant) -> None:
        self.participants.pop(leaving.id, None)
        for tile in leaving.tiles.values():
            tile.stop()
        for viewer in self.participants.values():
            for mid, shown_id in list(viewer.showing.items()):
                if shown_id == leaving.id:
                    viewer.tiles[mid].show(None)
                    del viewer.showing[mid]

    def _show(self, viewer: Participant, shown: Participant) -> None:
        mid = viewer.free_tile()
        if mid is None:
            log.warning("room %s: %s has no free tile for %s", self.id, viewer.id, shown.id)
            return
        viewer.tiles[mid].show(shown.session.feed.subscribe())
        viewer.showing[mid] = shown.id

    def roster_for(self, viewer: Participant) -> dict:
        tile_of = {shown: mid for mid, shown in viewer.showing.items()}
        return {
            "type": messages.ROSTER, "room_id": self.id, "you": viewer.id,
            "participants": [{"id": p.id, "name": p.name, "target": p.session.target.id, "mid": tile_of.get(p.id)}
                             for p in self.participants.values()],
        }

    def send_roster(self, participant: Participant) -> None:
        channel = participant.session.status_channel
        if channel is not None and channel.readyState == "open":
            with contextlib.suppress(Exception):  # a closing channel: the next roster will do
                channel.send(json.dumps(self.roster_for(participant)))

    def broadcast_roster(self) -> None:
        for participant in self.participants.values():
            self.send_roster(participant)


class RoomRegistry:
    def __init__(self, room_size: int, max_rooms: int, unjoined_ttl_s: float = 600.0) -> None:
        self._room_size = room_size
        self._max_rooms = max_rooms
        self._unjoined_ttl_s = unjoined_ttl_s
        self._rooms: dict[str, Room] = {}

    def create(self) -> Room:
        self._expire_unjoined()
        if len(self._rooms) >= self._max_rooms:
            raise ApiError(503, f"too many open rooms ({self._max_rooms}); try again later")
        room = Room(self._room_size)
        self._rooms[room.id] = room
        self._update_metrics()
        return room

    def get(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            raise ApiError(404, "unknown or closed room: ask for a new link")
        return room

    @contextlib.contextmanager
    def reserve_place(self, room: Room) -> Iterator[None]:
        if len(room.participants) + room.joining >= room.max_participants:
            raise ApiError(409, f"room full: {room.max_participants} of {room.max_participants} places taken")
        room.joining += 1
        try:
            yield
        finally:
            room.joining -= 1

    def tiles_for(self, session: Session) -> dict[str, TileTrack]:
        """Attach a tile track to the client's extra video transceivers, at most one per other place in a room;
        tiles are send-only (what the caller sends on them is never received) and the rest are refused."""
        tiles: dict[str, TileTrack] = {}
        for transceiver in session.pc.getTransceivers():
            if len(tiles) >= self._room_size - 1:
                break
            if transceiver.kind == "video" and transceiver.sender.track is None:
                tile = TileTrack()
                transceiver.sender.replaceTrack(tile)
                transceiver.direction = "sendonly"
                tiles[transceiver.mid] = tile
        return tiles

    def join(self, room: Room, session: Session, name: str, tiles: dict[str, TileTrack]) -> Participant:
        participant = Participant(secrets.token_urlsafe(6), name, session, tiles)
        room.add(participant)

        async def leave(_: Session) -> None:
            room.remove(participant)
            if not room.participants and not room.joining:
                self._rooms.pop(room.id, None)
            room.broadcast_roster()
            self._update_metrics()

        session.on_close.append(leave)
        # The status channel usually opens after the answer: the roster goes out then too.
        session.on_channel_open.append(lambda: room.send_roster(participant))
        room.broadcast_roster()
        self._update_metrics()
        return participant

    def _expire_unjoined(self) -> None:
        now = time.monotonic()
        for room_id, room in list(self._rooms.items()):
            if not room.participants and not room.joining and now - room.created > self._unjoined_ttl_s:
                del self._rooms[room_id]

    def _update_metrics(self) -> None:
        metrics.ROOMS_OPEN.set(len(self._rooms))
        metrics.ROOM_PARTICIPANTS.set(sum(len(r.participants) for r in self._rooms.values()))
        metrics.RELAY_FANOUT.set(sum(len(p.showing) for r in self._rooms.values() for p in r.participants.values()))


# Invisible letters that are not format characters but show as blanks (Hangul fillers, the blank Braille cell).
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def clean_name(value: object) -> str:
    """A display name every participant sees: NFKC-normalised (no look-alike compatibility forms), without
    control, format (bidi overrides and isolates, zero-width characters, BOM), private-use or unassigned
    characters, or blank letters, which could reorder or hide what others read; whitespace collapsed, at most
    NAME_MAX characters."""
    if value is None:
        return "Guest"
    if not isinstance(value, str):
        raise ApiError(400, "name must be a string")
    value = unicodedata.normalize("NFKC", value[:8 * NAME_MAX])  # bounded work whatever the client sends
    kept = "".join(" " if ch.isspace() else ch for ch in value
                   if ch.isspace() or (unicodedata.category(ch)[0] != "C" and ch not in INVISIBLE_LETTERS))
    name = " ".join(kept.split())[:NAME_MAX].strip()
    return name or "Guest"

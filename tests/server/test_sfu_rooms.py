"""Avatar rooms through a real Janus (--sfu janus): one Janus, two server processes, aiortc participants.

Janus is Debian's package started here with the project's config (deploy/janus) on free ports; one Janus
and the two servers serve the whole module (the crash test adds a third server of its own and kills it;
the restart test goes last: it restarts that Janus).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evaluation.identity import face_embedding
from loadtest.local_janus import RunningJanus, janus_available, running_janus
from loadtest.local_server import REPO_ROOT, RunningServer, free_port, running_server
from loadtest.peer import PeerConfig, RejectedError, SyntheticPeer
from models.assets import gallery, sample_media
from rtc import messages
from tests.server.test_api import call, upload
from tests.server.test_rooms import assert_tile_shows, embedding_of, metric

ROOM_SIZE = 3
IDLE_TIMEOUT_S = 4
pytestmark = pytest.mark.skipif(not janus_available(), reason="Debian's janus is not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningJanus]:
    with running_janus(tmp_path_factory.mktemp("janus"), admin=True) as running:  # admin: to count handles
        yield running


@pytest.fixture(scope="module")
def servers(janus: RunningJanus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, ...]]:
    tmp = tmp_path_factory.mktemp("sfu-servers")
    with sfu_server(tmp, janus) as first, sfu_server(tmp, janus) as second:
        yield first, second


def sfu_server(tmp: Path, janus: RunningJanus) -> contextlib.AbstractContextManager[RunningServer]:
    # The secrets go by environment (janus.server_env()), as in the deploy files, never on the command line.
    return running_server(tmp, "--generator", "warp", "--admission", "cap", "--room-size", str(ROOM_SIZE),
                          "--sfu-recover-s", "4", "--video-idle-timeout-s", str(IDLE_TIMEOUT_S),
                          env=janus.server_env())


def post_json(server: RunningServer, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    return call(server, "POST", path, json.dumps(body).encode(), headers)


def janus_feeds(janus: RunningJanus) -> dict[int, list[dict]]:
    """Every publisher in every Janus room, straight from Janus."""
    feeds = {}
    for room in janus.videoroom({"request": "list"})["list"]:
        listed = janus.videoroom({"request": "listparticipants", "room": room["room"]})
        if "participants" in listed:  # else destroyed between the two requests
            feeds[room["room"]] = [p for p in listed["participants"] if p.get("publisher")]
    return feeds


def test_three_participants_on_two_servers_see_each_others_avatars(
        janus: RunningJanus, servers: tuple[RunningServer, RunningServer], talking_face_frames) -> None:
    first, second = servers
    assert first.get_json("/api/info")["sfu"] == "janus"
    assert "sfu_url" not in first.get_json("/api/info") and "sfu_secret" not in first.get_json("/api/info")
    photo = sample_media("single_face.jpg")
    code, uploaded = upload(second, [("me.jpg", photo.read_bytes())])
    assert code == 201
    # ann and bob join through the first server, cat through the second.
    targets = {"ann": ("astronaut", gallery()[0].path, first), "bob": ("grace_hopper", gallery()[1].path, first),
               "cat": (uploaded["id"], photo, second)}
    target_embeddings = {name: embedding_of(path) for name, (_, path, _) in targets.items()}
    driver_embedding = face_embedding(talking_face_frames[0])
    code, room = post_json(first, "/api/rooms", {})
    assert code == 201 and room["sfu"] == "janus" and len(room["room_id"]) >= 16
    code, seen = call(second, "GET", f"/api/rooms/{room['room_id']}")
    assert code == 200 and seen["participants"] == []  # the other server finds the room in Janus

    async def scenario() -> None:
        peers: dict[str, SyntheticPeer] = {}
        try:
            await check(peers)
        finally:
            for peer in peers.values():
                await peer.close()

    async def check(peers: dict[str, SyntheticPeer]) -> None:
        for name, (target_id, _, server) in targets.items():
            config = PeerConfig(url=server.url, target=target_id, fps=15, measure=False, room=room["room_id"],
                                room_tiles=0, name=name, keep_frames=40)
            peers[name] = SyntheticPeer(talking_face_frames, config)
            await peers[name].connect()
            assert peers[name].sfu == "janus"
        extra = SyntheticPeer(talking_face_frames[:5], PeerConfig(url=second.url, room=room["room_id"],
                                                                  room_tiles=0, measure=False))
        with pytest.raises(RejectedError) as rejected:
            await extra.connect()
        assert rejected.value.status == 409 and "room full" in rejected.value.message
        # Watches start once each feed's media is up: wait until every viewer has plenty of both others.
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline and not all(
                len(viewer.stats.tile_frames.get(viewer.stats.tile_of(name) or "", [])) >= 45
                for viewer_name, viewer in peers.items() for name in targets if name != viewer_name):
            await asyncio.sleep(0.5)
        assert metric(first, "marionette_sfu_publishers") == 2 and metric(second, "marionette_sfu_publishers") == 1
        assert metric(first, "marionette_sfu_watches") == 4 and metric(second, "marionette_sfu_watches") == 2

        # Janus holds exactly the three avatars: every feed it carries is one of the feeds checked below.
        (published,) = janus_feeds(janus).values()
        feeds = {json.loads(p["display"])["name"]: p["id"] for p in published}
        assert set(feeds) == set(targets)
        for server in servers:
            code, described = call(server, "GET", f"/api/rooms/{room['room_id']}")
            assert code == 200 and {p["name"] for p in described["participants"]} == set(targets)

        # Everyone sees the two others, each as the target they chose, not as the driver video.
        for viewer_name, viewer in peers.items():
            assert {p["name"] for p in viewer.stats.roster["participants"]} == set(targets)
            assert not viewer.stats.errors, viewer.stats.errors
            for shown_name in targets:
                if shown_name == viewer_name:
                    continue
                tile = viewer.stats.tile_of(shown_name)
                assert tile == f"feed:{feeds[shown_name]}", f"{viewer_name} has no feed for {shown_name}"
                assert_tile_shows(viewer.stats.tile_frames.get(tile, []), viewer_name, shown_name,
                                  target_embeddings, driver_embedding)

        # Cat (the second server's caller) leaves: unpublished from Janus, the others' feed of her stops.
        cat_tile_at_ann = peers["ann"].stats.tile_of("cat")
        await peers["cat"].close()
        await asyncio.sleep(2.0)
        assert {json.loads(p["display"])["name"] for p in next(iter(janus_feeds(janus).values()))} == {"ann", "bob"}
        count = len(peers["ann"].stats.tile_frames[cat_tile_at_ann])
        await asyncio.sleep(1.5)
        assert len(peers["ann"].stats.tile_frames[cat_tile_at_ann]) == count
        for name in ("ann", "bob"):
            assert {p["name"] for p in peers[name].stats.roster["participants"]} == {"ann", "bob"}
        assert metric(first, "marionette_sfu_watches") == 2

    asyncio.run(scenario())
    deadline = time.monotonic() + 5
    while janus_feeds(janus) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert janus_feeds(janus) == {}  # the empty room is destroyed in Janus
    for server in servers:
        code, error = call(server, "GET", f"/api/rooms/{room['room_id']}")
        assert code == 404 and "unknown or closed room" in error["error"]


def test_sfu_room_bad_input_and_a_vanishing_caller(
        janus: RunningJanus, servers: tuple[RunningServer, RunningServer], talking_face_frames) -> None:
    first, second = servers
    code, error = post_json(first, "/api/rooms/nope/join", {"sdp": "v=0", "type": "offer"})
    assert code == 404 and "unknown or closed room" in error["error"]
    code, room = post_json(first, "/api/rooms", {})
    code, error = post_json(second, f"/api/rooms/{room['room_id']}/join", {"sdp": "v=0", "type": "offer", "name": 5})
    assert code == 400 and "name" in error["error"]

    async def scenario() -> None:
        # A one-to-one caller is in no room: nothing to watch.
        async with SyntheticPeer(talking_face_frames[:5], PeerConfig(url=first.url, measure=False)) as alone:
            status, body = await alone.request("POST", "/watch", json={"feed": 1})
            assert status == 409 and "not in a room" in body["error"]
        config = PeerConfig(url=first.url, room=room["room_id"], room_tiles=0, measure=False, name="dan")
        async with SyntheticPeer(talking_face_frames[:5], config) as peer:
            for feed in ("1", True, None):
                status, body = await peer.request("POST", "/watch", json={"feed": feed})
                assert status == 400 and "feed" in body["error"]
            status, body = await peer.request("POST", "/watch", json={"feed": 12345})
            assert status == 404 and "no such feed" in body["error"]
            status, body = await peer.request("POST", "/watch/unknown", json={"sdp": "v=0", "type": "answer"})
            assert status == 404 and "unknown watch" in body["error"]
            status, body = await peer.request("POST", "/watch/unknown", json={"sdp": "v=0", "type": "offer"})
            assert status == 400
            status, body = await peer.request("DELETE", "/watch/unknown")
            assert status == 404
            code, body = call(first, "POST", f"/api/sessions/{peer.session_id}/watch", b'{"feed": 1}',
                              {"Content-Type": "application/json", "Authorization": "Bearer wrong"})
            assert code == 401
            # A target switch shows in the room's roster (Janus's display), on the other server too.
            status, _ = await peer.request("POST", "/target", json={"target": "grace_hopper"})
            assert status == 200
            code, described = call(second, "GET", f"/api/rooms/{room['room_id']}")
            assert code == 200 and [p["name"] for p in described["participants"]] == ["dan"]
            assert await wait_until(lambda: peer.stats.roster and
                                    peer.stats.roster["participants"][0]["target"] == "grace_hopper", 5)
            # Dan vanishes (no hang-up): unpublished from Janus within the idle timeout.
            await peer.close(hang_up=False)
            deadline = time.monotonic() + IDLE_TIMEOUT_S + 5
            while janus_feeds(janus) != {} and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            assert janus_feeds(janus) == {}  # his feed left, and the empty room was destroyed

    asyncio.run(scenario())


def test_janus_api_needs_the_shared_secret(janus: RunningJanus) -> None:
    reply = dataclasses.replace(janus, secret="wrong").request({"janus": "create"})
    assert reply["janus"] == "error" and reply["error"]["code"] == 403


def test_janus_down_at_start_up_names_the_url(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    started = time.monotonic()
    env = {**os.environ, "MARIONETTE_SFU_SECRET": secrets.token_hex(16),
           "MARIONETTE_ROOM_KEY_SECRET": secrets.token_hex(16)}
    result = subprocess.run([sys.executable, "-m", "server", "--port", str(free_port()), "--generator", "still",
                             "--sfu", "janus", "--sfu-url", url], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 2
    assert f"cannot reach Janus at {url}" in result.stderr and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def statuses(peer: SyntheticPeer, kind: str) -> list[dict]:
    return [s for s in peer.stats.statuses if s.get("type") == kind]


async def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.3)
    return True


def janus_handles(janus: RunningJanus, kind: str) -> int:
    """Handles of that VideoRoom kind (publisher, subscriber) Janus holds for anyone, from its admin API."""
    return sum(handle.get("type") == kind for handles in janus.handles().values() for handle in handles)


async def hang_up(peer: SyntheticPeer) -> tuple[int, dict]:
    """DELETE the session, failing the test (not waiting on) when the server makes it wait for Janus."""
    try:
        return await asyncio.wait_for(peer.request("DELETE", ""), 5)
    except TimeoutError:
        raise AssertionError("the hang-up waited on Janus") from None


def longest_pause(times: list[float], start: float, end: float) -> float:
    """The longest stretch of [start, end] without one of `times` in it."""
    inside = sorted(t for t in times if start <= t <= end)
    return max(b - a for a, b in zip([start, *inside], [*inside, end], strict=True))


def test_a_paused_janus_holds_up_neither_a_hang_up_nor_anyone_else_s_call(
        janus: RunningJanus, servers: tuple[RunningServer, RunningServer], talking_face_frames) -> None:
    """Janus stopped (SIGSTOP) while callers leave its room: their hang-up answers at once, housekeeping
    (which closes the vanished one) keeps sending everyone's status, other calls keep their frames; once
    Janus runs again the room is cleaned up all the same."""
    first, _ = servers
    code, room = post_json(first, "/api/rooms", {})
    assert code == 201
    pause_s = IDLE_TIMEOUT_S + 5  # the vanished caller is closed by housekeeping in the middle of it

    async def scenario() -> None:
        def in_room(name: str) -> PeerConfig:
            return PeerConfig(url=first.url, room=room["room_id"], room_tiles=0, measure=False, name=name)

        ann, bob = SyntheticPeer(talking_face_frames[:10], in_room("ann")), SyntheticPeer(
            talking_face_frames[:10], in_room("bob"))
        solo = SyntheticPeer(talking_face_frames[:10], PeerConfig(url=first.url, measure=False))  # no room
        status_times: list[float] = []
        try:
            for peer in (ann, bob, solo):
                await peer.connect()
            assert await wait_until(lambda: len(ann.stats.tile_frames.get(ann.stats.tile_of("bob") or "", [])) > 5
                                    and len(solo.stats.received) > 5, 25)
            assert janus_handles(janus, "publisher") == 2

            async def watch_statuses() -> None:
                seen = 0
                while True:
                    if len(solo.stats.statuses) > seen:
                        seen = len(solo.stats.statuses)
                        status_times.append(time.perf_counter())
                    await asyncio.sleep(0.05)

            watcher = asyncio.create_task(watch_statuses())
            janus.process.send_signal(signal.SIGSTOP)
            paused = time.perf_counter()
            try:
                await bob.close(hang_up=False)  # vanishes: housekeeping closes him after the idle timeout
                started = time.perf_counter()
                status, body = await hang_up(ann)
                hang_up_s = time.perf_counter() - started
                await ann.close(hang_up=False)
                await asyncio.sleep(pause_s - (time.perf_counter() - paused))
            finally:
                janus.process.send_signal(signal.SIGCONT)
                resumed = time.perf_counter()
                watcher.cancel()
            print(f"hang-up answered in {hang_up_s * 1000:.0f} ms with Janus stopped")
            assert status == 200 and body == {"closed": True}
            assert hang_up_s < 0.5
            frame_times = [frame.arrived for frame in solo.stats.received]
            status_gap, frame_gap = (longest_pause(times, paused + 0.5, resumed)
                                     for times in (status_times, frame_times))
            print(f"while Janus was stopped: longest gap {status_gap:.2f} s in solo's status messages "
                  f"(every 0.5 s), {frame_gap:.2f} s in solo's frames")
            assert status_gap < 2.0, "housekeeping waited on Janus"
            assert frame_gap < 2.0
            assert not solo.stats.errors
        finally:
            janus.process.send_signal(signal.SIGCONT)
            for peer in (ann, bob, solo):
                await peer.close()

    asyncio.run(scenario())
    # Janus runs again: both left the room in Janus too (their close hooks ran on their own) and it is destroyed.
    deadline = time.monotonic() + 20
    while janus_feeds(janus) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert janus_feeds(janus) == {} and janus_handles(janus, "publisher") == 0
    assert metric(first, "marionette_room_participants") == 0


def test_concurrent_watches_stay_within_the_limit_and_a_late_watch_leaks_no_handle(
        janus: RunningJanus, servers: tuple[RunningServer, RunningServer], talking_face_frames) -> None:
    first, second = servers
    code, room = post_json(first, "/api/rooms", {})
    assert code == 201
    subscribers_before = janus_handles(janus, "subscriber")
    limit = ROOM_SIZE - 1

    async def scenario() -> None:
        dan = SyntheticPeer(talking_face_frames[:10], PeerConfig(url=first.url, room=room["room_id"], room_tiles=0,
                                                                 measure=False, name="dan"))
        eva = SyntheticPeer(talking_face_frames[:10], PeerConfig(url=second.url, room=room["room_id"],
                                                                 room_tiles=0, measure=False, name="eva"))
        try:
            for peer in (dan, eva):
                await peer.connect()
            # Each watches the other (the peers do it themselves): one of dan's places is taken.
            assert await wait_until(lambda: len(dan.stats.tile_frames.get(dan.stats.tile_of("eva") or "", [])) > 3
                                    and len(eva.stats.tile_frames.get(eva.stats.tile_of("dan") or "", [])) > 3, 25)
            feed = next(p["feed"] for p in dan.stats.roster["participants"] if p["name"] == "eva")

            # Six watch requests at once, all in flight together (Janus stopped while they arrive).
            janus.process.send_signal(signal.SIGSTOP)
            try:
                requests = [asyncio.create_task(dan.request("POST", "/watch", json={"feed": feed})) for _ in range(6)]
                await asyncio.sleep(0.5)
            finally:
                janus.process.send_signal(signal.SIGCONT)
            answers = await asyncio.gather(*requests)
            codes = sorted(status for status, _ in answers)
            assert codes == [201] * (limit - 1) + [409] * (7 - limit), codes
            assert all("at most" in body["error"] for status, body in answers if status == 409)
            assert metric(first, "marionette_sfu_watches") == limit
            assert janus_handles(janus, "subscriber") == subscribers_before + limit + 1  # + eva's of dan

            # A free place again, then a watch that Janus answers only after dan has hung up.
            (extra,) = [body["watch_id"] for status, body in answers if status == 201]
            status, _ = await dan.request("DELETE", f"/watch/{extra}")
            assert status == 200
            janus.process.send_signal(signal.SIGSTOP)
            try:
                late = asyncio.create_task(dan.request("POST", "/watch", json={"feed": feed}))
                await asyncio.sleep(0.5)
                assert not late.done()  # waiting on Janus
                status, _ = await hang_up(dan)
                assert status == 200
            finally:
                janus.process.send_signal(signal.SIGCONT)
            status, body = await late
            print(f"the late watch: {status} {body.get('error')}")
            assert status == 409 and "left the room" in body["error"]
        finally:
            janus.process.send_signal(signal.SIGCONT)
            for peer in (dan, eva):
                await peer.close()

    asyncio.run(scenario())
    # Dan's watches, the late one too, and eva's of dan (she follows the roster) are all gone from Janus.
    # Leaving runs in the background (off the batcher's path), and the last one out destroys the room after
    # looking again briefly: wait for all of it, within one bound.
    def cleaned_up() -> bool:
        return (janus_handles(janus, "subscriber") == subscribers_before and janus_handles(janus, "publisher") == 0
                and janus_feeds(janus) == {})

    deadline = time.monotonic() + 10
    while not cleaned_up() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert janus_handles(janus, "subscriber") == subscribers_before
    assert janus_handles(janus, "publisher") == 0 and janus_feeds(janus) == {}


def test_a_crashed_server_s_participant_leaves_the_room_within_janus_s_session_timeout(
        janus: RunningJanus, servers: tuple[RunningServer, RunningServer], talking_face_frames,
        tmp_path: Path) -> None:
    first, second = servers
    session_timeout = int(re.search(r"(?m)^\s*session_timeout\s*=\s*(\d+)",
                                    (janus.config_dir / "janus.jcfg").read_text()).group(1))
    assert session_timeout <= 15  # the shipped config: a crash costs the room seconds, not a minute

    with sfu_server(tmp_path, janus) as doomed:
        code, room = post_json(first, "/api/rooms", {})
        assert code == 201

        async def scenario() -> None:
            peers = {name: SyntheticPeer(talking_face_frames[:10], PeerConfig(
                url=server.url, room=room["room_id"], room_tiles=0, measure=False, name=name))
                for server, name in ((first, "ann"), (second, "bob"), (doomed, "zed"))}
            ann, bob = peers["ann"], peers["bob"]
            try:
                for peer in peers.values():
                    await peer.connect()
                assert await wait_until(lambda: all(
                    len(viewer.stats.tile_frames.get(viewer.stats.tile_of(name) or "", [])) > 5
                    for viewer in (ann, bob) for name in ("ann", "bob", "zed") if name != viewer.config.name), 25)

                # kill -9: no hang-up, no detach; only Janus's session timeout can take zed's feed out.
                doomed.process.send_signal(signal.SIGKILL)
                doomed.process.wait()
                killed = time.monotonic()
                assert await wait_until(lambda: all(
                    {p["name"] for p in viewer.stats.roster["participants"]} == {"ann", "bob"}
                    for viewer in (ann, bob)), session_timeout + 8)
                print(f"zed left both rosters {time.monotonic() - killed:.1f} s after the kill")
                names = [json.loads(p["display"])["name"] for feeds in janus_feeds(janus).values() for p in feeds]
                assert sorted(names) == ["ann", "bob"]  # Janus dropped zed's feed, nothing else
                await asyncio.sleep(0.5)  # the peers drop their watch of zed's feed
                assert metric(first, "marionette_sfu_watches") == 1 and metric(second, "marionette_sfu_watches") == 1

                # ann and bob's call goes on: each still gets their own avatar and the other's tile.
                before = [(len(p.stats.received), len(p.stats.tile_frames[p.stats.tile_of(other)]))
                          for p, other in ((ann, "bob"), (bob, "ann"))]
                await asyncio.sleep(1.5)
                after = [(len(p.stats.received), len(p.stats.tile_frames[p.stats.tile_of(other)]))
                         for p, other in ((ann, "bob"), (bob, "ann"))]
                assert all(a[0] > b[0] and a[1] > b[1] for a, b in zip(after, before, strict=True)), (before, after)
                assert not ann.stats.errors and not bob.stats.errors
            finally:
                for peer in peers.values():
                    await peer.close()

        asyncio.run(scenario())
    for server in servers:
        assert server.process.poll() is None and f'File "{REPO_ROOT}/server/' not in server.log()


def test_janus_restart_republishes_then_a_long_outage_ends_rooms(
        janus: RunningJanus, servers: tuple[RunningServer, RunningServer], talking_face_frames) -> None:
    first, second = servers
    code, room = post_json(first, "/api/rooms", {})

    async def scenario() -> None:
        peers = [SyntheticPeer(talking_face_frames[:10], PeerConfig(url=server.url, room=room["room_id"],
                                                                    room_tiles=0, measure=False, name=name))
                 for server, name in ((first, "eve"), (second, "fay"))]
        try:
            for peer in peers:
                await peer.connect()
            eve, fay = peers
            assert await wait_until(lambda: len(eve.stats.tile_frames.get(eve.stats.tile_of("fay") or "", [])) > 10,
                                    20)
            old_tile = eve.stats.tile_of("fay")

            # A quick restart: both are told, re-published into the same room, and see each other again.
            janus.stop()
            janus.start()
            assert await wait_until(lambda: all(statuses(p, messages.ROOM_STATUS) and
                                                statuses(p, messages.ROOM_STATUS)[-1]["state"] == "restored"
                                                for p in peers), 30)
            assert [s["state"] for s in statuses(eve, messages.ROOM_STATUS)] == ["reconnecting", "restored"]
            assert await wait_until(lambda: eve.stats.tile_of("fay") not in (None, old_tile) and len(
                eve.stats.tile_frames.get(eve.stats.tile_of("fay"), [])) > 10, 20), "fay's new feed never played"
            assert {p["name"] for p in fay.stats.roster["participants"]} == {"eve", "fay"}
            assert len(next(iter(janus_feeds(janus).values()))) == 2  # re-published, nothing left over

            # A long outage (past --sfu-recover-s): the room ends cleanly, the calls go on.
            janus.stop()
            assert await wait_until(lambda: all(statuses(p, messages.ROOM_CLOSED) for p in peers), 30)
            for peer in peers:
                assert "room has ended" in statuses(peer, messages.ROOM_CLOSED)[0]["reason"]
                status, body = await peer.request("POST", "/watch", json={"feed": 1})
                assert status == 409 and "not in a room" in body["error"]
            received = len(eve.stats.received)
            await asyncio.sleep(1)
            assert len(eve.stats.received) > received
            for server in servers:  # meanwhile room requests get a clear 503, not an error page
                code, error = post_json(server, "/api/rooms", {})
                assert code == 503 and "room service is unavailable" in error["error"]
                code, error = call(server, "GET", f"/api/rooms/{room['room_id']}")
                assert code == 503
        finally:
            janus.start()
            for peer in peers:
                await peer.close()

    asyncio.run(scenario())
    for server in servers:
        # No exception out of our code (aiortc may log one for a Janus connection that died while connecting).
        assert server.process.poll() is None and f'File "{REPO_ROOT}/server/' not in server.log()
        assert metric(server, 'marionette_sfu_errors_total{kind="janus_lost"}') >= 2
        assert metric(server, "marionette_room_participants") == 0
    # Janus is back: a new room across both servers works again.
    code, room = post_json(second, "/api/rooms", {})
    assert code == 201
    code, seen = call(first, "GET", f"/api/rooms/{room['room_id']}")
    assert code == 200 and seen["participants"] == []

"""HTTPS and TURN: the credential scheme (checked against an independent HMAC and a real coturn), the options'
rules, start-up errors for bad certificates, and a server on https with TURN that uses the relay itself."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint
from aiortc import RTCConfiguration, RTCPeerConnection
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from loadtest.local_server import REPO_ROOT, RunningServer, running_server
from server.client_limits import CallRate
from server.config import parse_config
from server.errors import ApiError
from server.selfsigned import write_certificate
from server.turn import TURN_TTL_MARGIN_S, IceSettings, turn_credential
from tests.coturn import TURNSERVER, RunningTurn, running_coturn

ICE_SERVERS_PER_MINUTE = 6
needs_coturn = pytest.mark.skipif(TURNSERVER is None, reason="coturn is not installed (scripts/setup.sh --dev)")


def expected_password(secret: str, username: str) -> str:
    """The TURN REST API password, computed with another HMAC implementation (cryptography's OpenSSL one)."""
    mac = HMAC(secret.encode(), hashes.SHA1())
    mac.update(username.encode())
    return base64.b64encode(mac.finalize()).decode()


def test_turn_credentials_follow_the_rest_api_scheme() -> None:
    now = time.time()
    first = turn_credential("s3cret", 3600)
    expiry, _, tag = first.username.partition(":")
    assert now + 3600 - 2 <= int(expiry) <= now + 3600 + 2  # expires in the future, ttl from now
    assert tag and ":" not in tag
    assert first.credential == expected_password("s3cret", first.username)
    second = turn_credential("s3cret", 3600)
    assert second.username != first.username and second.credential != first.credential  # fresh every time
    assert turn_credential("s3cret", 60, tag="abc", now=1000).username == "1060:abc"


def test_ice_settings_for_browsers_and_for_the_server() -> None:
    settings = IceSettings(static=("stun:stun.example:3478", "turn:user:pw@static.example:3478"),
                           turn_urls=("turn:turn.example:3478", "turn:turn.example:3478?transport=tcp"),
                           turn_secret="k", turn_ttl_s=600)
    stun, turn = settings.for_browser()
    assert stun == {"urls": "stun:stun.example:3478"}  # inline (static) TURN passwords never reach a page
    assert turn["urls"] == ["turn:turn.example:3478", "turn:turn.example:3478?transport=tcp"]
    assert turn["credential"] == expected_password("k", turn["username"])
    assert settings.for_browser()[1]["username"] != turn["username"]
    server = settings.for_server()
    assert [s.urls for s in server] == ["stun:stun.example:3478", "turn:static.example:3478",
                                        ["turn:turn.example:3478", "turn:turn.example:3478?transport=tcp"]]
    assert server[2].credential == expected_password("k", server[2].username)
    assert IceSettings().for_browser() == [] and IceSettings().for_server() == []
    assert IceSettings(turn_urls=("turn:x:3478",)).for_browser() == []  # no secret: no TURN


@pytest.mark.parametrize(("argv", "words"), [
    (["--tls-cert", "README.md"], "--tls-cert and --tls-key go together"),
    (["--tls-cert", "no/such.pem", "--tls-key", "README.md"], "no such file: no/such.pem"),
    (["--turn-urls", "turn:a:3478"], "TURN needs --turn-secret"),
    (["--turn-urls", "stun:a:3478", "--turn-secret", "x"], "expected turn:host:port"),
    (["--turn-url", "turn:u:p@a:3478", "--turn-secret", "x"], "no inline credentials"),
    (["--turn-ttl-s", "86400"], "unrecognized arguments"),  # the lifetime follows --max-session-s
    (["--ice-servers-per-minute", "0"], "must be >= 1"),
])
def test_bad_tls_and_turn_options_are_refused(capsys, argv: list[str], words: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err


def test_turn_credentials_live_just_past_the_longest_call() -> None:
    config = parse_config(["--turn-urls", "turn:a:3478", "--turn-secret", "k", "--max-session-s", "3600"])
    settings = IceSettings.of(config)
    assert settings.turn_ttl_s == 3600 + TURN_TTL_MARGIN_S and TURN_TTL_MARGIN_S <= 900
    expiry = int(settings.for_browser()[0]["username"].split(":")[0])
    assert time.time() + 3600 < expiry <= time.time() + 3600 + TURN_TTL_MARGIN_S + 2
    assert IceSettings.of(parse_config([])).turn_ttl_s == 4 * 3600 + TURN_TTL_MARGIN_S  # the 4 h default call


def test_per_client_rate_counts_a_sliding_minute_for_each_address() -> None:
    now = [1000.0]
    rate = CallRate(3, clock=lambda: now[0])
    for _ in range(3):
        rate.check_and_count("198.51.100.1", "ICE server requests")
    with pytest.raises(ApiError) as refused:
        rate.check_and_count("198.51.100.1", "ICE server requests")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "60"
    assert "3 a minute" in refused.value.message
    rate.check_and_count("198.51.100.2", "ICE server requests")  # another address has its own count
    now[0] += 59.0
    with pytest.raises(ApiError):
        rate.check_and_count("198.51.100.1", "ICE server requests")
    now[0] += 1.5  # the first calls left the window
    rate.check_and_count("198.51.100.1", "ICE server requests")
    assert rate.clients() == {"198.51.100.1"}  # the idle address was forgotten


def test_config_takes_the_turn_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARIONETTE_TURN_SECRET", "from-env")
    config = parse_config(["--turn-url", "turn:a:3478,turn:a:3478?transport=tcp"])
    assert config.turn_secret == "from-env" and config.turn_urls == ("turn:a:3478", "turn:a:3478?transport=tcp")


def test_unusable_certificates_stop_the_server_with_a_message(tmp_path: Path) -> None:
    cert, key = write_certificate(["localhost"], tmp_path / "a")
    _, other_key = write_certificate(["localhost"], tmp_path / "b")
    unreadable = tmp_path / "garbage.pem"
    unreadable.write_text("not a certificate")
    cases = [((cert, other_key), "is not the private key of"), ((unreadable, key), "not a PEM certificate")]
    for (cert_path, key_path), words in cases:
        result = subprocess.run([sys.executable, "-m", "server", "--tls-cert", str(cert_path), "--tls-key",
                                 str(key_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0
        assert words in result.stderr and "Traceback" not in result.stderr, result.stderr


# ---- against a real coturn ------------------------------------------------------------------------------


class _Quiet(asyncio.DatagramProtocol):
    pass


async def _allocate(turn: RunningTurn, username: str, password: str) -> tuple[str, int]:
    transport, _ = await asyncio.wait_for(
        create_turn_endpoint(_Quiet, ("127.0.0.1", turn.port), username, password), 10)
    try:
        return transport.get_extra_info("sockname")  # the relayed address coturn allocated
    finally:
        transport.close()


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTurn]:
    if TURNSERVER is None:
        pytest.skip("coturn is not installed (scripts/setup.sh --dev)")
    with running_coturn(tmp_path_factory.mktemp("coturn"), secret="unit-test-secret") as running:
        yield running


@needs_coturn
def test_coturn_accepts_fresh_credentials_and_refuses_expired_or_foreign_ones(turn: RunningTurn) -> None:
    fresh = turn_credential(turn.secret, 600)
    host, _port = asyncio.run(_allocate(turn, fresh.username, fresh.credential))
    assert host == "127.0.0.1"
    expired = turn_credential(turn.secret, 600, now=time.time() - 3600)
    foreign = turn_credential("another-secret", 600)
    for bad in (expired, foreign):
        with pytest.raises(TransactionFailed, match="401"):
            asyncio.run(_allocate(turn, bad.username, bad.credential))


@pytest.fixture(scope="module")
def tls_turn_server(tmp_path_factory: pytest.TempPathFactory, turn: RunningTurn) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("tls-server")
    cert, key = write_certificate(["127.0.0.1"], folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MARIONETTE_TURN_SECRET", turn.secret)
        with running_server(folder, "--generator", "passthrough", "--tls-cert", str(cert), "--tls-key", str(key),
                            # coturn answers STUN too (an unanswered STUN server would cost 5 s per answer)
                            "--turn-urls", turn.url, "--ice-servers", f"stun:127.0.0.1:{turn.port}",
                            "--max-session-s", "3600", "--ice-servers-per-minute", str(ICE_SERVERS_PER_MINUTE),
                            cafile=cert) as running:
            yield running


@needs_coturn
def test_https_server_hands_out_fresh_turn_credentials(tls_turn_server: RunningServer, turn: RunningTurn) -> None:
    assert tls_turn_server.url.startswith("https://")  # and the client verified the certificate
    assert "on https://127.0.0.1:" in tls_turn_server.log()
    first = tls_turn_server.get_json("/api/ice-servers")["iceServers"]
    second = tls_turn_server.get_json("/api/ice-servers")["iceServers"]
    assert first[0] == {"urls": f"stun:127.0.0.1:{turn.port}"}
    assert first[1]["urls"] == [turn.url] and first[1]["username"] != second[1]["username"]
    assert first[1]["credential"] == expected_password(turn.secret, first[1]["username"])
    expiry = int(first[1]["username"].split(":")[0])  # --max-session-s 3600 plus the margin
    assert time.time() + 3600 < expiry <= time.time() + 3600 + TURN_TTL_MARGIN_S + 2
    assert asyncio.run(_allocate(turn, first[1]["username"], first[1]["credential"]))[0] == "127.0.0.1"
    info = tls_turn_server.get_json("/api/info")
    assert "turn_secret" not in info and turn.secret not in json.dumps(info)
    assert info["turn_urls"] == [turn.url] and info["tls_cert"] == "cert.pem"


@needs_coturn
def test_the_server_side_of_a_call_gathers_a_relay_candidate(tls_turn_server: RunningServer,
                                                             turn: RunningTurn) -> None:
    """The server's own aiortc peer connection allocates on the same TURN: its answer offers a relay candidate."""

    async def answer_sdp() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="sendrecv")
        pc.createDataChannel("status")
        await pc.setLocalDescription(await pc.createOffer())
        body = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer", "target": "astronaut"}).encode()
        request = urllib.request.Request(tls_turn_server.url + "/api/offer", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30, context=tls_turn_server.ssl_context) as response:
                answer = json.loads(response.read())
            close = urllib.request.Request(f"{tls_turn_server.url}/api/sessions/{answer['session_id']}",
                                           method="DELETE", headers={"Authorization": f"Bearer {answer['token']}"})
            urllib.request.urlopen(close, timeout=10, context=tls_turn_server.ssl_context).close()
            return answer["sdp"]
        finally:
            await pc.close()

    sdp = asyncio.run(answer_sdp())
    relay = [line for line in sdp.splitlines() if line.startswith("a=candidate") and " typ relay" in line]
    assert relay and " 127.0.0.1 " in relay[0], sdp  # coturn's relay address (it relays from 127.0.0.1)


@needs_coturn
def test_ice_servers_are_rate_limited_per_client(tls_turn_server: RunningServer) -> None:
    """Each answer mints TURN credentials: a client gets --ice-servers-per-minute of them, then a 429."""
    statuses = []
    for _ in range(ICE_SERVERS_PER_MINUTE + 1):
        try:
            tls_turn_server.get_json("/api/ice-servers")
            statuses.append(200)
        except urllib.error.HTTPError as error:
            statuses.append(error.code)
            body, retry_after = json.loads(error.read()), error.headers["Retry-After"]
    assert statuses[-1] == 429 and statuses.count(200) <= ICE_SERVERS_PER_MINUTE
    assert "too many ICE server requests" in body["error"] and 1 <= int(retry_after) <= 60


# ---- behind a reverse proxy ------------------------------------------------------------------------------


@pytest.mark.parametrize(("trusted", "forwarded", "expected"), [
    (True, "203.0.113.9", "203.0.113.9"),
    (True, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the proxy appends last; earlier entries are the client's say
    (False, "203.0.113.9", "127.0.0.1"),
    (True, None, "127.0.0.1"),
])
def test_client_address_behind_a_proxy_on_loopback(trusted: bool, forwarded: str | None, expected: str) -> None:
    """Real HTTP requests over loopback (as from docker-compose's proxy) to a handler that names the client."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from server.http_input import client_address

    async def who(request: web.Request) -> web.Response:
        return web.Response(text=client_address(request, trusted))

    async def ask() -> str:
        app = web.Application()
        app.router.add_get("/", who)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            response = await client.get("/", headers={"X-Forwarded-For": forwarded} if forwarded else {})
            return await response.text()

    assert asyncio.run(ask()) == expected

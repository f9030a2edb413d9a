"""Cross-site abuse (issue 19 rows 2 and 9), against one real server: what a foreign web page can make a
browser send (a foreign Host after DNS rebinding, cross-origin POSTs, text/plain JSON) is refused with a
clear 403/415, while same-origin pages, the https proxy's shape, allowed origins and non-browser clients pass;
every response carries the security headers; one client cannot hold more than its share of unjoined rooms;
names are cleaned of bidi and invisible characters. The compose proxy (Debian's caddy) keeps the internal
endpoints internal and passes the demo page's requests.

Requests are sent with http.client, which sends exactly the Host / Origin / Sec-Fetch-Site headers a case
names (what a browser would send for the page in question).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loadtest.local_janus import janus_available, running_janus
from loadtest.local_server import RunningServer, running_server
from loadtest.peer import PeerConfig, SyntheticPeer
from server.origin_guard import ServedHosts, normalised_origin, split_host
from server.room_quota import UnjoinedRoomQuota
from server.rooms import NAME_MAX, clean_name
from server.selfsigned import write_certificate
from tests.caddy import CADDY, running_caddy

PUBLIC = "avatar.test"  # the server's --public-host (RFC 6761 reserved: never a real host)
PARTNER = "https://partner.test"  # an --allowed-origins origin
EVIL = "https://evil.example"
SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # --trust-forwarded-for: each case that creates rooms names its own client (X-Forwarded-For from loopback),
    # so the per-client count of unjoined rooms is per case.
    with running_server(tmp_path_factory.mktemp("cross-site"), "--generator", "passthrough", "--public-host", PUBLIC,
                        "--allowed-origins", PARTNER, "--trust-forwarded-for",
                        "--max-unjoined-rooms-per-client", "2") as running:
        yield running


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def send(server: RunningServer, method: str, path: str, headers: dict[str, str], body: bytes | None = None,
         port: int | None = None, context: ssl.SSLContext | None = None, sni: str | None = None) -> Answer:
    """One request to 127.0.0.1 with exactly `headers` (Host included: http.client adds none of its own)."""
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port or int(server.url.rsplit(":", 1)[1]), timeout=30)
    else:  # https to 127.0.0.1, the certificate checked for the name `sni`
        connection = http.client.HTTPSConnection(sni, port, timeout=30, context=context)
        connection.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), 30),
                                              server_hostname=sni)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.headers, response.read())
    finally:
        connection.close()


def own(server: RunningServer) -> str:
    return server.url.removeprefix("http://")  # 127.0.0.1:<port>, the Host a page opened from the URL sends


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    headers: dict[str, str]  # {host} and {port} are filled in with the server's
    status: int
    words: str = ""  # in the error message
    body: bytes | None = None
    client: str = field(default="")  # X-Forwarded-For, for cases that create rooms


JSON = {"Content-Type": "application/json"}
CASES = [
    # ---- refused: what a foreign page can make a browser send ----
    Case("foreign Host (DNS rebinding)", "GET", "/", {"Host": "evil.example:{port}"}, 403,
         "unknown host 'evil.example:"),
    Case("foreign Host reading an API", "GET", "/api/targets", {"Host": "evil.example"}, 403, "--public-host"),
    Case("foreign Host, its own origin", "POST", "/api/rooms",
         {"Host": "evil.example:{port}", "Origin": "http://evil.example:{port}", **JSON}, 403, "unknown host"),
    Case("foreign Host on /api/info", "GET", "/api/info", {"Host": "evil.example"}, 403, "unknown host"),
    Case("IP Host outside --public-host", "GET", "/", {"Host": "10.1.2.3:{port}"}, 403, "unknown host"),
    Case("cross-origin text/plain POST", "POST", "/api/rooms",
         {"Host": "{host}", "Origin": EVIL, "Content-Type": "text/plain"}, 403, "cross-origin request refused",
         b"{}"),
    Case("cross-origin JSON POST", "POST", "/api/rooms", {"Host": "{host}", "Origin": EVIL, **JSON}, 403,
         "origin 'https://evil.example'", b"{}"),
    Case("cross-origin offer", "POST", "/api/offer", {"Host": "{host}", "Origin": EVIL, **JSON}, 403,
         "--allowed-origins", b'{"sdp": "v=0", "type": "offer"}'),
    Case("cross-origin hang-up", "DELETE", "/api/sessions/abc", {"Host": "{host}", "Origin": EVIL}, 403,
         "cross-origin"),
    Case("cross-origin upload", "POST", "/api/targets",
         {"Host": "{host}", "Origin": EVIL, "Content-Type": "multipart/form-data; boundary=x"}, 403, "cross-origin",
         b"--x--\r\n"),
    Case("Sec-Fetch-Site cross-site, no Origin", "POST", "/api/rooms",
         {"Host": "{host}", "Sec-Fetch-Site": "cross-site", **JSON}, 403, "no Origin given", b"{}"),
    Case("Sec-Fetch-Site same-site", "POST", "/api/rooms",
         {"Host": "{host}", "Origin": "http://localhost:1", "Sec-Fetch-Site": "same-site", **JSON}, 403,
         "cross-origin", b"{}"),
    Case("Origin null (sandboxed frame)", "POST", "/api/rooms", {"Host": "{host}", "Origin": "null", **JSON}, 403,
         "origin 'null'", b"{}"),
    Case("same host, other port", "POST", "/api/rooms", {"Host": "{host}", "Origin": "http://127.0.0.1:1", **JSON},
         403, "cross-origin", b"{}"),
    Case("long Origin, not echoed", "POST", "/api/rooms", {"Host": "{host}", "Origin": "https://" + "a" * 3000, **JSON},
         403, "(a 3008-character string)", b"{}"),
    Case("text/plain JSON offer", "POST", "/api/offer", {"Host": "{host}", "Content-Type": "text/plain"}, 415,
         "Content-Type: application/json (this one has Content-Type 'text/plain')", b'{"sdp": "v=0"}'),
    Case("form-encoded offer", "POST", "/api/offer",
         {"Host": "{host}", "Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json", b"a=b"),
    Case("room without Content-Type", "POST", "/api/rooms", {"Host": "{host}"}, 415, "no Content-Type", b""),
    # ---- passed: the demo page itself, the proxy's shape, partners, non-browser clients ----
    Case("the page over http on 127.0.0.1", "POST", "/api/rooms",
         {"Host": "{host}", "Origin": "http://{host}", "Sec-Fetch-Site": "same-origin", **JSON}, 201, body=b"{}",
         client="192.0.2.1"),
    Case("the page, Origin only (no Sec-Fetch-*)", "POST", "/api/rooms",
         {"Host": "{host}", "Origin": "http://{host}", **JSON}, 201, body=b"{}", client="192.0.2.2"),
    Case("the page on localhost", "POST", "/api/rooms",
         {"Host": "localhost:{port}", "Origin": "http://localhost:{port}", **JSON}, 201, body=b"{}",
         client="192.0.2.3"),
    Case("https page behind the proxy (server sees http)", "POST", "/api/rooms",
         {"Host": PUBLIC, "Origin": f"https://{PUBLIC}", **JSON}, 201, body=b"{}", client="192.0.2.4"),
    Case("--allowed-origins page", "POST", "/api/rooms",
         {"Host": "{host}", "Origin": PARTNER, "Sec-Fetch-Site": "cross-site", **JSON}, 201, body=b"{}",
         client="192.0.2.5"),
    Case("no Origin (curl, the load tester)", "POST", "/api/rooms", {"Host": "{host}", **JSON}, 201, body=b"",
         client="192.0.2.6"),
    Case("the demo page", "GET", "/", {"Host": "localhost:{port}"}, 200),
    Case("the public name", "GET", "/static/app.js", {"Host": f"{PUBLIC}:8443"}, 200),
    Case("health under any Host (probes)", "GET", "/healthz", {"Host": "10.244.0.7:8080"}, 200),
    Case("metrics under any Host (Prometheus)", "GET", "/metrics", {"Host": "marionette-live:8080"}, 200),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cross_site_requests(server: RunningServer, case: Case) -> None:
    port = own(server).rsplit(":", 1)[1]
    headers = {k: v.format(host=own(server), port=port) for k, v in case.headers.items()}
    if case.client:
        headers["X-Forwarded-For"] = case.client
    answer = send(server, case.method, case.path, headers, case.body)
    assert answer.status == case.status, answer.body[:300]
    for name, value in SECURITY_HEADERS.items():  # on refusals and answers alike
        assert answer.headers[name] == value, name
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    if case.status >= 400:
        error = answer.json()["error"]
        assert case.words in error, error
        assert len(answer.body) < 400  # a sentence, never the input back at length
    if case.status == 201:
        assert answer.json()["room_id"]


def test_the_page_s_policy_fits_the_page(server: RunningServer) -> None:
    """The demo page has no inline script or style the policy would block (the browser test runs it for real)."""
    answer = send(server, "GET", "/", {"Host": "localhost"})
    policy = dict(part.strip().split(" ", 1) for part in answer.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'" and policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    page = answer.body.decode()
    assert "<script>" not in page and "style=" not in page and "<style" not in page
    assert page.count("<script src=\"/static/") == 2


# ---- unjoined rooms per client --------------------------------------------------------------------------


def create_room(server: RunningServer, client: str) -> Answer:
    forwarded = {"X-Forwarded-For": client} if client else {}
    return send(server, "POST", "/api/rooms", {"Host": own(server), **forwarded, **JSON}, b"{}")


def test_one_client_cannot_fill_the_rooms(server: RunningServer, talking_face_frames) -> None:
    first, second = create_room(server, "198.51.100.1"), create_room(server, "198.51.100.1")
    assert first.status == second.status == 201
    third = create_room(server, "198.51.100.1")
    assert third.status == 429, third.body
    assert "2 rooms nobody has joined" in third.json()["error"]
    assert 500 < int(third.headers["Retry-After"]) <= 600  # when the older one expires (--room-unjoined-ttl-s)
    assert create_room(server, "198.51.100.2").status == 201  # another client is not affected

    async def join(room_id: str) -> None:
        peer = SyntheticPeer(talking_face_frames[:10], PeerConfig(url=server.url, room=room_id, measure=False,
                                                                  name="\u202eevil\u202c \u200bBob\ufeff"))
        try:
            await peer.connect()
            room = json.loads(send(server, "GET", f"/api/rooms/{room_id}", {"Host": own(server)}).body)
            assert [p["name"] for p in room["participants"]] == ["evil Bob"]  # bidi and zero-width gone
        finally:
            await peer.close()

    asyncio.run(join(first.json()["room_id"]))  # someone joined it: it no longer counts against its creator
    assert create_room(server, "198.51.100.1").status == 201


@pytest.mark.skipif(not janus_available(), reason="Debian's janus is not installed (scripts/setup.sh)")
def test_janus_rooms_have_the_same_quota(tmp_path: Path, talking_face_frames) -> None:
    """--sfu janus: the same count (route handler), and a join through Janus frees the place."""
    with running_janus(tmp_path) as janus, running_server(
            tmp_path, "--generator", "passthrough", "--max-unjoined-rooms-per-client", "1",
            env=janus.server_env()) as sfu_server:
        first = create_room(sfu_server, "")
        assert first.status == 201 and first.json()["sfu"] == "janus"
        refused = create_room(sfu_server, "")
        assert refused.status == 429 and "1 rooms nobody has joined" in refused.json()["error"]
        assert refused.headers["Retry-After"]

        async def join() -> None:
            config = PeerConfig(url=sfu_server.url, room=first.json()["room_id"], measure=False, room_tiles=0)
            async with SyntheticPeer(talking_face_frames[:10], config):
                pass

        asyncio.run(join())
        assert create_room(sfu_server, "").status == 201


def test_unjoined_room_quota_frees_a_place_on_expiry_and_on_failure() -> None:
    quota = UnjoinedRoomQuota(per_client=1, ttl_s=0.2)
    with quota.creating("a") as created:
        created("room-1")
    with pytest.raises(Exception, match="nobody has joined"), quota.creating("a"):
        pass
    time.sleep(0.25)
    with pytest.raises(RuntimeError), quota.creating("a"):  # expired: a place again; a failed create gives it back
        raise RuntimeError("Janus said no")
    with quota.creating("a") as created:
        created("room-2")
    quota.joined("room-2")
    with quota.creating("a"):
        pass


# ---- names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("Ann", "Ann"),
    ("\u202egnp.exe\u202c", "gnp.exe"),  # right-to-left override: would show as "exe.png"
    ("\u2067Bob\u2069 \u200e\u200f\u061c", "Bob"),  # isolates and direction marks
    ("B\u200bo\u200cb\u200d\u2060\ufeff", "Bob"),  # zero-width characters and BOM
    ("\u3164\u115f\u2800", "Guest"),  # blank letters only
    ("  Ann \t\n  Lee \u2028 ", "Ann Lee"),  # whitespace collapsed
    ("\x00\x07Ann\x7f\x9b", "Ann"),  # C0/C1 controls
    ("\uff21\uff4e\uff4e", "Ann"),  # fullwidth forms (NFKC)
    ("\ufb01le", "file"),  # ligature (NFKC)
    ("\ue000Ann\U000f0000", "Ann"),  # private use
    ("Zoë Ñandú 李雷 مريم", "Zoë Ñandú 李雷 مريم"),  # real names in any script stay as they are
    ("x" * 500, "x" * NAME_MAX),
    ("\u200b" * 10_000, "Guest"),
    (None, "Guest"),
])
def test_names_are_cleaned(raw: str | None, cleaned: str) -> None:
    assert clean_name(raw) == cleaned


# ---- the Host and Origin rules, unit by unit ---------------------------------------------------------------


def test_served_hosts_default_to_localhost_and_ip_addresses() -> None:
    default = ServedHosts.of((), "0.0.0.0")
    for host in ("localhost", "localhost:8080", "app.localhost", "127.0.0.1:8080", "[::1]:8080", "192.168.1.20:8080",
                 "[2001:db8::5]", "LOCALHOST."):
        assert default.serves(host), host
    for host in ("evil.example", "evil.example:8080", "127.0.0.1.evil.example", "", "a b", "x:y", "[::1"):
        assert not default.serves(host), host
    named = ServedHosts.of((), "myhost.lan")  # --host given as a name: that name too
    assert named.serves("myhost.lan:8080") and not named.serves("other.lan")
    listed = ServedHosts.of(("avatar.example.com", "b.test:8443"), "0.0.0.0")
    assert listed.serves("avatar.example.com") and listed.serves("Avatar.Example.Com:443")
    assert listed.serves("b.test:8443") and not listed.serves("b.test:8444") and not listed.serves("b.test")
    assert listed.serves("127.0.0.1:8080") and not listed.serves("10.0.0.5")  # only loopback addresses now
    assert split_host("[::1]:8080") == ("::1", 8080) and split_host("1.2.3.4:99999") is None


def test_origins_are_normalised() -> None:
    assert normalised_origin("HTTPS://App.Example.com:443/") == "https://app.example.com"
    assert normalised_origin("http://[::1]:8080") == "http://[::1]:8080"
    for bad in ("null", "https://a.com/path", "ftp://a.com", "https://user@a.com", "a.com", "https://a.com:99999"):
        assert normalised_origin(bad) is None, bad


@pytest.mark.parametrize(("flag", "value", "words"), [
    ("--public-host", "https://avatar.example.com", "expected a host name"),
    ("--public-host", "avatar.example.com/path", "expected a host name"),
    ("--allowed-origins", "app.example.com", "expected scheme://host"),
    ("--allowed-origins", "https://app.example.com/x", "no path"),
])
def test_bad_cross_site_options_are_refused(capsys, flag: str, value: str, words: str) -> None:
    from server.config import parse_config

    with pytest.raises(SystemExit):
        parse_config([flag, value])
    assert words in capsys.readouterr().err


# ---- through the compose proxy (Debian's caddy with deploy/proxy/Caddyfile) ------------------------------


@pytest.mark.skipif(CADDY is None, reason="Debian's caddy is not installed (scripts/setup.sh --dev)")
def test_the_compose_proxy_keeps_internal_paths_internal_and_passes_the_page(server: RunningServer,
                                                                             tmp_path: Path) -> None:
    cert, key = write_certificate([PUBLIC], tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    upstream = int(server.url.rsplit(":", 1)[1])
    with running_caddy(tmp_path, upstream, cert, key, PUBLIC) as port:
        host = f"{PUBLIC}:{port}"

        def through(method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
            return send(server, method, path, {"Host": host, **(headers or {})}, body, port, context, PUBLIC)

        for path in ("/metrics", "/healthz", "/api/info", "/METRICS", "/%6detrics", "/api/info?x=1"):
            answer = through("GET", path)
            assert answer.status == 404, (path, answer.body[:200])
            assert b"marionette_" not in answer.body and b"generator" not in answer.body
        page = through("GET", "/")
        assert page.status == 200 and b"MarioNETte" in page.body  # the server saw Host avatar.test:<port>
        assert page.headers["X-Frame-Options"] == "DENY"  # the server's headers pass the proxy
        assert through("GET", "/api/targets").json()["targets"]
        # What the page's Create room sends from https://avatar.test:<port>: Host and Origin as Caddy forwards them.
        room = through("POST", "/api/rooms", {"Origin": f"https://{host}", "Sec-Fetch-Site": "same-origin", **JSON},
                       b"{}")
        assert room.status == 201, room.body
        refused = through("POST", "/api/rooms", {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", **JSON}, b"{}")
        assert refused.status == 403 and "cross-origin" in refused.json()["error"]

"""Pieces of --sfu janus that need no Janus: the derived room keys, the secrets' checks, the start-up message."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from loadtest.local_server import free_port
from server.config import PLACEHOLDER_WORDS, parse_config
from server.janus import startup_problem
from server.sfu_keys import RoomKeys, room_secret


def test_room_keys_are_the_same_on_every_server_and_secret_without_the_key() -> None:
    keys = RoomKeys.of("link-token", "shared")
    assert keys == RoomKeys.of("link-token", "shared")  # another server derives the same room, pin and secret
    assert 0 < keys.number < 2**48 and len(keys.pin) == 24 and keys.secret == room_secret("shared", keys.number)
    other_key, other_room = RoomKeys.of("link-token", "other"), RoomKeys.of("link-token2", "shared")
    assert other_key.number != keys.number and other_key.pin != keys.pin
    assert other_room.number != keys.number and other_room.pin != keys.pin
    assert "link-token" not in keys.pin + keys.secret + str(keys.number)


def test_start_up_check_names_the_url() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    problem = asyncio.run(startup_problem(url, "secret"))
    assert problem is not None and problem.startswith(f"cannot reach Janus at {url}")


def janus_flags(**secrets_by_variable: str) -> list[str]:
    return ["--sfu", "janus", *[arg for flag, value in secrets_by_variable.items() for arg in (f"--{flag}", value)]]


GOOD, OTHER = secrets.token_hex(32), secrets.token_hex(32)


def test_sfu_url_must_be_janus_s_websocket(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_config([*janus_flags(**{"sfu-secret": GOOD, "room-key-secret": OTHER}), "--sfu-url",
                      "http://127.0.0.1:8088/janus"])
    err = capsys.readouterr().err
    assert "--sfu-url: 'http://127.0.0.1:8088/janus': must be Janus's WebSocket API URL" in err
    assert parse_config(["--sfu-url", "http://ignored-without-sfu"]).sfu == "none"
    config = parse_config(janus_flags(**{"sfu-secret": GOOD, "room-key-secret": OTHER}))
    assert config.sfu_url == "ws://127.0.0.1:8188" and config.room_key_secret == OTHER


@pytest.mark.parametrize("flag", ["sfu-secret", "room-key-secret"])
@pytest.mark.parametrize("value, words", [
    ("", "is not set; make one with: export MARIONETTE_"),
    ("s3cr3t-value", "is 12 characters long: use at least 16"),
    ("change-me-change-me-2024", "looks like a placeholder (it contains 'changeme')"),
    ("janusrocks-janusrocks", "looks like a placeholder (it contains 'janusrocks')"),
    ("Password1234567890", "looks like a placeholder (it contains 'password')"),
    ("a" * 32, "repeats too few characters"),
])
def test_janus_refuses_a_missing_short_or_placeholder_secret(capsys, flag: str, value: str, words: str) -> None:
    given = {"sfu-secret": GOOD, "room-key-secret": OTHER} | {flag: value}
    with pytest.raises(SystemExit):
        parse_config(janus_flags(**given))
    err = capsys.readouterr().err
    assert f"--{flag}: {words}" in err and (not value or value not in err)  # the value is never echoed
    assert parse_config([f"--{flag}", value]).sfu == "none"  # without --sfu janus they are not needed


def test_room_keys_do_not_come_from_the_janus_api_secret(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_config(janus_flags(**{"sfu-secret": GOOD, "room-key-secret": GOOD}))
    assert "--room-key-secret: must differ from --sfu-secret" in capsys.readouterr().err


def test_the_janus_start_script_refuses_the_same_placeholders() -> None:
    from loadtest.local_janus import START_SCRIPT

    words = START_SCRIPT.read_text().split("for word in ", 1)[1].split(";", 1)[0].split()
    assert tuple(words) == PLACEHOLDER_WORDS  # one list, two places: the image has no Python

"""Pieces of --sfu janus that need no Janus: the derived room keys and the start-up check's message."""

from __future__ import annotations

import asyncio

import pytest

from loadtest.local_server import free_port
from server.config import parse_config
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
    url = f"http://127.0.0.1:{free_port()}/janus"
    problem = asyncio.run(startup_problem(url, "secret"))
    assert problem is not None and problem.startswith(f"cannot reach Janus at {url}")


def test_sfu_url_must_be_http(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_config(["--sfu", "janus", "--sfu-url", "ws://janus:8188"])
    assert "--sfu-url: 'ws://janus:8188': must be Janus's HTTP API URL" in capsys.readouterr().err
    assert parse_config(["--sfu-url", "ws://ignored-without-sfu"]).sfu == "none"

"""A real call through the server with the MarioNETte generator (untrained weights, onnxruntime)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from loadtest.local_server import running_server
from loadtest.peer import PeerConfig, SyntheticPeer


def test_marionette_generator_serves_a_call(tmp_path: Path, talking_face_frames) -> None:
    with running_server(tmp_path, "--generator", "marionette", "--runtime", "onnx", "--network", "lite") as server:
        info = server.get_json("/api/info")
        assert (info["generator"], info["runtime"], info["network"]) == ("marionette", "onnx", "lite")

        async def call() -> SyntheticPeer:
            async with SyntheticPeer(talking_face_frames, PeerConfig(url=server.url, fps=15)) as peer:
                await asyncio.sleep(4)
            return peer

        peer = asyncio.run(call())
    assert peer.stats.errors == []
    assert len(peer.stats.received) >= 15
    assert {(r.width, r.height) for r in peer.stats.received} == {(256, 256)}
    assert len(peer.stats.latencies_ms()) >= 10  # frame ids survive the neural generator's output corner


def test_server_refuses_missing_weights_and_models(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no such file"), running_server(
            tmp_path, "--generator", "marionette", "--weights", str(tmp_path / "missing.pt"), startup_timeout=30):
        pass
    with pytest.raises(RuntimeError, match="needs --expression-model"), running_server(
            tmp_path, "--transformer", "pca", startup_timeout=30):
        pass

"""A real Prometheus (Debian's) scrapes a server during a call; the numbers it stores are right."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.local_server import RunningServer, free_port, running_server
from loadtest.peer import PeerConfig, SyntheticPeer

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="Debian prometheus is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("prom"), "--generator", "warp") as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus-data")
    config = workdir / "prometheus.yml"
    target = server.url.removeprefix("http://")
    # The project's own scrape config, pointed at the test server and scraping faster.
    text = (Path(__file__).resolve().parents[2] / "deploy" / "prometheus.yml").read_text()
    config.write_text(text.replace("127.0.0.1:8080", target).replace("scrape_interval: 5s", "scrape_interval: 1s"))
    port = free_port()
    with open(workdir / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # ready, and the first scrape of the server is in
            try:
                if query(url, 'up{job="marionette"}'):
                    break
            except OSError:
                pass
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def query(prometheus: str, expression: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success"
    return body["data"]["result"]


def test_prometheus_sees_the_call(server: RunningServer, prometheus: str, talking_face_frames) -> None:
    async def call() -> SyntheticPeer:
        async with SyntheticPeer(talking_face_frames, PeerConfig(url=server.url, measure=False)) as peer:
            await asyncio.sleep(3.5)
            assert query(prometheus, "marionette_sessions_active")[0]["value"][1] == "1"
        return peer

    peer = asyncio.run(call())
    time.sleep(2.5)  # two more scrapes after the call ended
    scraped_in = float(query(prometheus, "marionette_frames_in_total")[0]["value"][1])
    scraped_out = float(query(prometheus, "marionette_frames_out_total")[0]["value"][1])
    assert scraped_in == pytest.approx(peer.stats.sent, abs=5)  # every sent frame reached the server
    assert 0 < scraped_out <= scraped_in
    assert len(peer.stats.received) <= scraped_out
    stages = {r["metric"]["stage"] for r in query(prometheus, "marionette_stage_seconds_count")}
    assert {"landmarks", "generate", "decode_rgb", "encode_yuv"} <= stages
    p95 = query(prometheus, "histogram_quantile(0.95, sum(rate(marionette_frame_latency_seconds_bucket[1m])) by (le))")
    assert 0 < float(p95[0]["value"][1]) < 1.0
    assert query(prometheus, "marionette_sessions_active")[0]["value"][1] == "0"
    assert query(prometheus, 'up{job="marionette"}')[0]["value"][1] == "1"

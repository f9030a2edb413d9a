"""Running synthetic callers against a server: a fixed number of them, or a ramp."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np

from loadtest.config import MAX_DURATION_S, MAX_PEERS, LoadTestConfig
from loadtest.peer import PeerConfig, RejectedError, SyntheticPeer
from loadtest.progress import ProgressLine
from loadtest.scrape import delta, scrape
from loadtest.summary import PeerSummary, StepResult, summarise_peer, tile_latency_p95_ms


@dataclass
class RunResult:
    url: str
    server_info: dict
    steps: list[StepResult] = field(default_factory=list)
    largest_held: int = 0  # most callers that all met the SLO at once

    def as_dict(self) -> dict:
        return {"url": self.url, "server": self.server_info, "largest_held": self.largest_held,
                "steps": [s.as_dict() for s in self.steps]}


class _Crowd:
    """The callers of one run, with their outcomes."""

    def __init__(self, config: LoadTestConfig, url: str, frames: list[np.ndarray], room: dict | None) -> None:
        self._config, self._url, self._frames, self._room = config, url, frames, room
        self.peers: list[SyntheticPeer | None] = []
        self.failures: dict[int, PeerSummary] = {}

    async def add(self, count: int) -> None:
        relayed = self._room is not None and not self._room.get("sfu")  # an SFU's feeds are watched, not tiles
        peer_config = PeerConfig(url=self._url, target=self._config.target, fps=self._config.fps,
                                 width=self._config.width, height=self._config.height,
                                 output_size=self._config.output_size, codec=self._config.codec,
                                 room=self._room["room_id"] if self._room else None,
                                 room_tiles=self._room["max_participants"] - 1 if relayed else 0)

        async def connect(index: int) -> None:
            peer = SyntheticPeer(self._frames, peer_config)
            try:
                await asyncio.wait_for(peer.connect(), timeout=30)
                self.peers[index] = peer
            except RejectedError as error:
                self.failures[index] = PeerSummary(index, "rejected", error=str(error), retry_after=error.retry_after)
            except (TimeoutError, aiohttp.ClientError, OSError, KeyError) as error:
                await peer.close(hang_up=False)
                self.failures[index] = PeerSummary(index, "failed", error=repr(error))

        first = len(self.peers)
        self.peers.extend([None] * count)
        await asyncio.gather(*(connect(first + i) for i in range(count)))

    def live_stats(self) -> tuple[int, float]:
        live = [p for p in self.peers if p is not None]
        fps = [p.stats.received_fps(skip_seconds=0) for p in live]
        return len(live), float(np.mean(fps)) if fps else 0.0

    def summarise(self, window: tuple[float, float]) -> list[PeerSummary]:
        # Rooms: every caller is in this process, so a tile's frame id finds its sender's send time.
        senders = {p.stats.roster["you"]: p.stats for p in self.peers if p is not None and p.stats.roster}
        out = []
        for index, peer in enumerate(self.peers):
            if peer is None:
                out.append(self.failures[index])
            else:
                summary = summarise_peer(index, peer.stats, window, self._config.fps, self._config.slo)
                if self._room:
                    summary.tile_latency_p95_ms = tile_latency_p95_ms(peer.stats, senders, window)
                out.append(summary)
        return out

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.peers if p is not None))


async def _measure(
    crowd: _Crowd, seconds: float, warmup: float, progress: ProgressLine, label: str
) -> tuple[float, float]:
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        live, fps = crowd.live_stats()
        progress.show(f"{label} | {live} connected | mean fps {fps:4.1f} | {elapsed:4.1f}/{seconds:.0f} s")
        await asyncio.sleep(min(0.5, seconds - elapsed))
    return started + warmup, time.perf_counter()


async def run(config: LoadTestConfig, url: str, frames: list[np.ndarray]) -> RunResult:
    progress = ProgressLine("loadtest", config.quiet)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/info") as response:
            response.raise_for_status()
            result = RunResult(url, await response.json())
        room = None
        if config.room:
            async with http.post(f"{url}/api/rooms", json={}) as response:  # JSON, as the server requires
                response.raise_for_status()
                room = await response.json()
        crowd = _Crowd(config, url, frames, room)
        deadline = time.perf_counter() + MAX_DURATION_S
        try:
            counts = range(config.peers, MAX_PEERS + 1) if config.ramp else [config.peers]
            for count in counts:
                before = await scrape(http, url)
                await crowd.add(count - len(crowd.peers))
                seconds = config.ramp_step_s if config.ramp else config.duration_s
                window = await _measure(crowd, seconds, config.warmup_s, progress, f"{count} peers")
                step = StepResult(count, window[1] - window[0], crowd.summarise(window),
                                  delta(before, await scrape(http, url)))
                result.steps.append(step)
                if step.all_met_slo:
                    result.largest_held = max(result.largest_held, count)
                elif config.ramp:
                    break  # the SLO broke: the previous step is the answer
                if time.perf_counter() + seconds > deadline:
                    break
        finally:
            progress.done()
            await crowd.close()
    if not config.ramp:
        result.largest_held = result.steps[-1].held if result.steps else 0
    return result

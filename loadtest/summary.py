"""Per-peer and per-step numbers from raw peer statistics, and the SLO verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from loadtest.config import SLO
from loadtest.peer import PeerStats

FREEZE_FACTOR = 3  # a gap longer than 3 frame intervals is a visible freeze


@dataclass
class PeerSummary:
    peer: int
    outcome: str  # ok | rejected | failed
    error: str | None = None
    retry_after: str | None = None  # rejected: the server's Retry-After header
    setup_s: float | None = None
    sent: int = 0
    received: int = 0
    fps: float = 0.0
    freezes: int = 0
    drop_ratio: float = 0.0
    matched: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    latency_max_ms: float | None = None
    decode_errors: int = 0
    met_slo: bool = False
    tiles_fps: list[float] | None = None  # rooms: fps of each other participant's avatar as received
    tile_latency_p95_ms: float | None = None  # rooms: sender's camera frame -> this viewer's tile, p95 over tiles

    def as_dict(self) -> dict:
        return asdict(self)


def summarise_peer(index: int, stats: PeerStats, window: tuple[float, float], fps_sent: float, slo: SLO) -> PeerSummary:
    start, end = window
    received = [r for r in stats.received if start <= r.arrived <= end]
    sent_ids = {i for i, t in stats.sent_at.items() if start <= t <= end}
    summary = PeerSummary(peer=index, outcome="ok", setup_s=stats.setup_seconds, sent=len(sent_ids),
                          received=len(received), decode_errors=len(stats.errors))
    summary.fps = len(received) / max(end - start, 1e-6)
    times = [r.arrived for r in received]
    gaps = np.diff(times) if len(times) > 1 else np.array([])
    summary.freezes = int(np.sum(gaps > FREEZE_FACTOR / fps_sent))
    summary.drop_ratio = round(1 - len(received) / len(sent_ids), 3) if sent_ids else 0.0
    latencies = [1000 * (r.arrived - stats.sent_at[r.frame_id]) for r in received
                 if r.frame_id is not None and r.frame_id in stats.sent_at]
    summary.matched = len(latencies)
    if latencies:
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        summary.latency_p50_ms, summary.latency_p95_ms = round(float(p50), 1), round(float(p95), 1)
        summary.latency_p99_ms, summary.latency_max_ms = round(float(p99), 1), round(float(max(latencies)), 1)
    if stats.tile_frames:
        summary.tiles_fps = [round(sum(start <= t <= end for t, _ in frames) / max(end - start, 1e-6), 1)
                             for frames in stats.tile_frames.values() if frames]
    summary.met_slo = bool(summary.fps >= slo.min_fps and summary.latency_p95_ms is not None
                           and summary.latency_p95_ms <= slo.max_p95_ms)
    return summary


@dataclass
class StepResult:
    peers: int
    seconds: float
    peer_summaries: list[PeerSummary]
    server_delta: dict

    @property
    def held(self) -> int:
        return sum(p.met_slo for p in self.peer_summaries)

    @property
    def all_met_slo(self) -> bool:
        return bool(self.peer_summaries) and all(p.met_slo for p in self.peer_summaries)

    def aggregate(self) -> dict:
        ok = [p for p in self.peer_summaries if p.outcome == "ok"]

        def mean(values: list[float | None]) -> float | None:
            real = [v for v in values if v is not None]
            return round(float(np.mean(real)), 1) if real else None

        return {
            "peers": self.peers,
            "connected": len(ok),
            "rejected": sum(p.outcome == "rejected" for p in self.peer_summaries),
            "failed": sum(p.outcome == "failed" for p in self.peer_summaries),
            "met_slo": self.held,
            "mean_fps": mean([p.fps for p in ok]),
            "min_fps": round(min((p.fps for p in ok), default=0.0), 1),
            "latency_p50_ms": mean([p.latency_p50_ms for p in ok]),
            "latency_p95_ms": mean([p.latency_p95_ms for p in ok]),
            "latency_p99_ms": mean([p.latency_p99_ms for p in ok]),
            "latency_max_ms": max((p.latency_max_ms or 0.0 for p in ok), default=None),
            "freezes": sum(p.freezes for p in ok),
            "mean_setup_s": mean([p.setup_s for p in ok]),
            "mean_tile_fps": mean([f for p in ok for f in (p.tiles_fps or [])]),
            "tile_latency_p95_ms": mean([p.tile_latency_p95_ms for p in ok]),
        }

    def as_dict(self) -> dict:
        return {"aggregate": self.aggregate(), "seconds": round(self.seconds, 2),
                "peers_detail": [p.as_dict() for p in self.peer_summaries], "server_metrics_delta": self.server_delta}


def tile_latency_p95_ms(viewer: PeerStats, senders: dict[str, PeerStats], window: tuple[float, float]) -> float | None:
    """p95 of (arrival on the viewer's tile - the sender's send time of that frame id), over all the viewer's
    tiles in the window; `senders` maps room participant ids to their peers' stats (all in this process)."""
    roster = viewer.roster or {}
    latencies = []
    for entry in roster.get("participants", []):
        sender = senders.get(entry["id"])
        key = entry.get("mid") or (f"feed:{entry['feed']}" if entry.get("feed") is not None else None)
        if sender is None or entry["id"] == roster.get("you") or key is None:
            continue
        latencies += [1000 * (arrived - sender.sent_at[frame_id]) for arrived, frame_id in viewer.tile_ids.get(key, [])
                      if window[0] <= arrived <= window[1] and frame_id in sender.sent_at]
    return round(float(np.percentile(latencies, 95)), 1) if latencies else None

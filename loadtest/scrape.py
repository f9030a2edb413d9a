"""Scrape the server's Prometheus metrics before and after a run; report what changed."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

# The series that tell where the time went; histograms are reduced to count and mean.
_COUNTERS = ("marionette_frames_in_total", "marionette_frames_out_total", "marionette_frames_no_face_total",
             "marionette_sessions_rejected_total")
_LABELLED = ("marionette_frames_dropped_total",)
_HISTOGRAMS = ("marionette_stage_seconds", "marionette_frame_latency_seconds", "marionette_batch_size")


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(f"{url}/metrics") as response:
        response.raise_for_status()
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def delta(before: dict[str, float], after: dict[str, float]) -> dict:
    def diff(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    out: dict = {name: diff(name) for name in _COUNTERS}
    for key in after:
        if key.startswith(_LABELLED):
            out[key] = diff(key)
    for name in _HISTOGRAMS:
        for key in after:
            if key.startswith(name + "_count"):
                count = diff(key)
                sum_key = key.replace("_count", "_sum", 1)
                label = key[len(name + "_count"):]
                out[f"{name}{label}"] = {"count": count,
                                         "mean": round(diff(sum_key) / count, 6) if count else None}
    return out

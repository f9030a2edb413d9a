"""The load-test report: JSON, a markdown summary and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt

from loadtest.runner import RunResult


def build_report(config_dict: dict, machine: dict, runs: dict[str, RunResult]) -> dict:
    report = {"machine": machine, "config": config_dict, "runs": {name: r.as_dict() for name, r in runs.items()}}
    if "model" in runs and "passthrough" in runs and runs["passthrough"].largest_held:
        report["held_ratio_model_vs_passthrough"] = round(
            runs["model"].largest_held / runs["passthrough"].largest_held, 3)
    return report


def markdown(report: dict) -> str:
    slo = report["config"]["slo"]
    lines = [
        "# Load test",
        "",
        f"Machine: {report['machine']['cpu']} x{report['machine']['cpu_count']}, "
        f"{report['machine']['memory_gib']} GiB, GPUs: {', '.join(report['machine']['gpus']) or 'none'}",
        f"SLO per session: fps >= {slo['min_fps']}, p95 latency <= {slo['max_p95_ms']} ms",
        "",
        "| run | generator | peers | met SLO | mean fps | min fps | p50 ms | p95 ms | p99 ms | max ms | freezes "
        "| rejected |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in report["runs"].items():
        for step in run["steps"]:
            a = step["aggregate"]
            lines.append(
                f"| {name} | {run['server'].get('generator')} | {a['peers']} | {a['met_slo']} | {a['mean_fps']} | "
                f"{a['min_fps']} | {a['latency_p50_ms']} | {a['latency_p95_ms']} | {a['latency_p99_ms']} | "
                f"{a['latency_max_ms']} | {a['freezes']} | {a['rejected']} |")
    lines.append("")
    for name, run in report["runs"].items():
        lines.append(f"- {name}: largest number of sessions that all met the SLO: **{run['largest_held']}**")
    if "held_ratio_model_vs_passthrough" in report:
        lines.append(f"- sessions held, model pipeline / pure media: **{report['held_ratio_model_vs_passthrough']}**")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    figure, (fps_axis, latency_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in report["runs"].items():
        aggregates = [s["aggregate"] for s in run["steps"]]
        peers = [a["peers"] for a in aggregates]
        fps_axis.plot(peers, [a["mean_fps"] or 0 for a in aggregates], "o-", label=f"{name} mean")
        fps_axis.plot(peers, [a["min_fps"] or 0 for a in aggregates], "x--", label=f"{name} min")
        for key, style in (("latency_p50_ms", "o-"), ("latency_p95_ms", "s--"), ("latency_p99_ms", "^:")):
            latency_axis.plot(peers, [a[key] or 0 for a in aggregates], style, label=f"{name} {key.split('_')[1]}")
    slo = report["config"]["slo"]
    fps_axis.axhline(slo["min_fps"], color="red", lw=0.8, label="SLO")
    latency_axis.axhline(slo["max_p95_ms"], color="red", lw=0.8, label="SLO p95")
    fps_axis.set(xlabel="concurrent sessions", ylabel="received fps per session", title="Frame rate")
    latency_axis.set(xlabel="concurrent sessions", ylabel="end-to-end latency (ms)", title="Latency")
    for axis in (fps_axis, latency_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(f"{report['machine']['cpu']} x{report['machine']['cpu_count']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(report: dict, json_path: Path) -> tuple[Path, Path]:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2))
    md_path, png_path = json_path.with_suffix(".md"), json_path.with_suffix(".png")
    md_path.write_text(markdown(report))
    plot(report, png_path)
    return md_path, png_path

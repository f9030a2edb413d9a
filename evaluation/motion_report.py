"""The motion-fidelity report: report.json, the report.md table, and driver | avatar strips per run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from evaluation.signals import SIGNALS, SignalTrack
from models.landmarks import face_size

LABEL_HEIGHT = 22


def strip_frames(driver: SignalTrack) -> dict[str, int]:
    """Driver frame indices worth looking at: the most closed eyes, the most open mouth, the largest head
    turn and nod (from the clip's median pose: the generic head's absolute angles carry a per-person offset),
    the largest landmark motion from the first face, and the first frame."""
    found = np.flatnonzero(driver.found)
    if not len(found):
        return {"first frame": 0}
    values = {name: driver.values[name][found] for name in SIGNALS}
    first = driver.landmarks[found[0]]
    assert first is not None
    motion = [float(np.linalg.norm(driver.landmarks[i] - first, axis=1).mean()) / face_size(first) for i in found]

    def pick(scores: np.ndarray) -> int:
        return int(found[int(np.nanargmax(scores))]) if not np.all(np.isnan(scores)) else int(found[0])

    return {
        "eyes most closed": pick(-values["eyes"]),
        "mouth most open": pick(values["mouth"]),
        "max |yaw|": pick(np.abs(values["yaw"] - np.nanmedian(values["yaw"]))),
        "max |pitch|": pick(np.abs(values["pitch"] - np.nanmedian(values["pitch"]))),
        "max motion": pick(np.array(motion)),
        "first frame": 0,
    }


def strip_image(driver_frames: list[np.ndarray], avatars: dict[int, np.ndarray], picks: dict[str, int],
                title: str) -> np.ndarray:
    """One row of labelled driver | avatar pairs (RGB); the whole driver frame, scaled to the avatar's height."""
    size = next(iter(avatars.values())).shape[0]
    pairs = []
    for label, index in picks.items():
        pair = np.concatenate([_fit_height(driver_frames[index], size), avatars[index]], axis=1)
        band = np.full((LABEL_HEIGHT, pair.shape[1], 3), 255, np.uint8)
        cv2.putText(band, f"{label} (#{index})", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        pairs.append(np.concatenate([band, pair], axis=0))
        pairs.append(np.full((pairs[-1].shape[0], 4, 3), 255, np.uint8))  # a gap between pairs
    row = np.concatenate(pairs[:-1], axis=1)
    header = np.full((LABEL_HEIGHT, row.shape[1], 3), 230, np.uint8)
    cv2.putText(header, f"{title}   (each pair: driver | avatar)", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([header, row], axis=0)


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    width = round(image.shape[1] * height / image.shape[0])
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")


def _cell(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "–" if value is None else "0" if value == 0 else f"{value:.2e}"


def markdown(report: dict) -> str:
    config = report["config"]
    frames = f"up to {config['max_frames']}" if config["max_frames"] else "all"
    lines = [
        "# Motion fidelity", "",
        f"Driver landmarks of the pipeline: {config['landmarks']}; {frames} frames per clip; "
        f"output {config['size']} px; identity every {config['embed_every']}th frame.",
        "Measured by an independent landmarker (dlib 68 points) on driver and avatar frames. r: Pearson correlation "
        "driver vs avatar; amp: avatar 5-95 % range / driver's. Folded: share of output pixels whose sampling map "
        "has area ratio <= 0; extreme: < 1/8 or > 8 (– : the generator does not sample the photo). id→T / id→D: "
        "mean dlib distance avatar to target photo / to the driver frame. fps: pipeline.process at batch 1 on a "
        f"shared CPU ({report['machine']['cpu']}, {report['machine']['cpu_count']} cores). Yaw and pitch: solvePnP "
        "on 11 rigid points (nose, eye corners); on clips whose head hardly moves (a few degrees) their r is "
        "dominated by how a landmarker couples mouth motion into pose: compare with the measure's ceiling below. "
        "At rest far-off %: share of the face region more than 60/255 off the aligned photo at the calibration "
        "frame (evaluation.rest_check; 0 = the photo itself). Held-out rows (evaluation set) come last.", "",
    ]
    header = ["clip", "target", "generator"] + [f"{s} {m}" for s in SIGNALS for m in ("r", "amp")]
    header += ["at rest far-off %", "worst tear %", "folded", "extreme", "id→T", "id→D", "jitter", "fps",
               "frames (both faces)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report["rows"]:
        held = " (held out)" if row.get("held_out") else ""
        cells = [row["clip"] + held, row["target"], row["generator"]]
        for name in SIGNALS:
            cells += [_cell(row["signals"][name]["corr"]), _cell(row["signals"][name]["amp"])]
        rest = row.get("rest_far_share")
        tears = row.get("tears")
        cells += [_cell(None if rest is None else 100 * rest),
                  _cell(None if tears is None else 100 * tears["worst_share"], 3),
                  _share(row["folds"]["folded_share"]),
                  _share(row["folds"]["extreme_share"]),
                  _cell(row["identity"]["to_target"]), _cell(row["identity"]["to_driver"]),
                  _cell(row["jitter"], 4), _cell(row["fps"], 1), f"{row['signals']['roll']['frames']}/{row['frames']}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Measure ceiling per clip (dlib on the driver vs dlib on the same frames at half resolution; "
              "passthrough is lower where its centre square cuts the face):", "",
              "| clip | " + " | ".join(f"{s} r | {s} amp" for s in SIGNALS) + " | frames |",
              "|" + "---|" * (2 * len(SIGNALS) + 2)]
    for name, clip in report["clips"].items():
        ceiling = clip["ceiling"]
        cells = [name] + [_cell(ceiling[s][m]) for s in SIGNALS for m in ("corr", "amp")]
        lines.append("| " + " | ".join(cells) + f" | {ceiling['roll']['frames']}/{clip['frames']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))

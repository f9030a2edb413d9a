"""Evaluate the batched neural landmark stage (BlazeFace + FaceMesh, `MeshLandmarkStage`) against dlib on every
frame of the sample videos.

Talking-face clips: 68-point NME (mean point error / dlib's inter-ocular distance) on frames where both find a
face, the fraction of dlib's face frames the tracker follows, and how well the eyes follow: the eye aspect ratio
of the tracked 68 points against dlib's (correlation over frames, and both 5-95% ranges). Clips where the face
leaves: "false faces" (the tracker reports a face on a frame where dlib finds none) and, for each return of the
face, how many frames the tracker takes to pick it up again. dlib runs full detection on every frame (no
tracking), so it is an independent reference. Writes report.json, report.md and frames.png into --out.

    python -m evaluation.facemesh --out out/facemesh_eval
    python -m evaluation.facemesh --out /tmp/quick --limit 60   # first 60 frames of each clip
    python -m evaluation.facemesh --out out/facemesh_eval_plain --no-refine-eyes   # FaceMesh's own eyelids
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from evaluation.facemesh_reference import TALKING_CLIPS, decode, dlib_face, nme
from evaluation.machine_info import machine_info
from models.face_measures import eye_aspect_ratio
from models.facemesh.mapping import MESH_CONTOURS
from models.facemesh.networks import RuntimeConfig
from models.facemesh.tracker import MeshLandmarkStage, MeshTrackerConfig, MeshTrackState

# face_noface.mov ends without its face and the face never comes back, so it also runs forward then backward:
# the face leaves and returns in the same scene. no_face.mp4 followed by single_face.mp4 is a hard cut to a face.
EXIT_CLIPS = ("face_noface.mov+face_noface.mov:reversed", "no_face.mp4", "no_face.mp4+single_face.mp4")
CLOSED = {"face_oval", "right_eye", "left_eye", "lips_outer", "lips_inner"}


@dataclass
class FrameResult:
    dlib: np.ndarray | None  # (68, 2)
    tracked: np.ndarray | None  # (68, 2)
    mesh: np.ndarray | None  # (468, 3)

    @property
    def nme(self) -> float | None:
        return nme(self.tracked, self.dlib) if self.dlib is not None and self.tracked is not None else None


@dataclass
class ClipReport:
    clip: str
    frames: int
    dlib_faces: int
    tracked: int  # frames with tracker points
    tracked_of_dlib_faces: float  # fraction of dlib's face frames that the tracker also has
    nme_mean: float | None
    nme_median: float | None
    nme_p90: float | None
    false_faces: int  # tracker face where dlib has none
    false_face_frames: list[int] = field(default_factory=list)
    returns: list[dict] = field(default_factory=list)  # each return of the face: frame, frames to re-acquire
    ms_per_frame: float = 0.0  # tracker only, one stream
    ear_corr: float | None = None  # eye aspect ratio, tracker vs dlib: Pearson correlation over frames with both
    ear_range: list[float] | None = None  # the tracker's 5th and 95th percentile
    dlib_ear_range: list[float] | None = None


def clip_frames(spec: str, limit: int | None = None) -> list[np.ndarray]:
    """Frames of a clip spec: sample videos joined by "+", each optionally ":reversed" (limit applies to each)."""
    frames: list[np.ndarray] = []
    for part in spec.split("+"):
        name, _, option = part.partition(":")
        if option not in ("", "reversed"):
            raise ValueError(f"unknown clip option {option!r} in {spec!r}")
        part_frames = list(decode(name, limit=limit))
        frames += part_frames[::-1] if option else part_frames
    return frames


def track_clip(stage: MeshLandmarkStage, frames: list[np.ndarray]) -> tuple[list[FrameResult], float]:
    state = MeshTrackState()
    results, elapsed = [], 0.0
    for frame in frames:
        start = time.perf_counter()
        points = stage.track([frame], [state])[0]
        elapsed += time.perf_counter() - start
        face = dlib_face(frame)
        mesh = state.mesh.copy() if points is not None and state.mesh is not None else None
        results.append(FrameResult(face[1] if face else None, points, mesh))
    return results, elapsed


def face_returns(results: list[FrameResult]) -> list[dict]:
    """Each start of a run of dlib face frames (the clip's start included) and the tracker's delay to follow."""
    out = []
    for index, result in enumerate(results):
        if result.dlib is None or (index > 0 and results[index - 1].dlib is not None):
            continue
        delay = next((k - index for k in range(index, len(results)) if results[k].tracked is not None), None)
        run = next((k for k in range(index, len(results)) if results[k].dlib is None), len(results)) - index
        out.append({"frame": index, "dlib_run_frames": run, "frames_to_reacquire": delay})
    return out


def summarise(clip: str, results: list[FrameResult], elapsed: float) -> ClipReport:
    errors = np.array([r.nme for r in results if r.nme is not None])
    dlib_faces = sum(r.dlib is not None for r in results)
    both = sum(r.dlib is not None and r.tracked is not None for r in results)
    false = [i for i, r in enumerate(results) if r.dlib is None and r.tracked is not None]

    def stat(fn) -> float | None:
        return round(float(fn(errors)), 4) if len(errors) else None

    return ClipReport(clip, len(results), dlib_faces, sum(r.tracked is not None for r in results),
                      round(both / dlib_faces, 4) if dlib_faces else 0.0, stat(np.mean), stat(np.median),
                      stat(lambda e: np.percentile(e, 90)), len(false), false, face_returns(results),
                      round(1000 * elapsed / max(len(results), 1), 2), *eye_agreement(results))


def eye_agreement(results: list[FrameResult]) -> tuple[float | None, list[float] | None, list[float] | None]:
    """Eye aspect ratio, tracker vs dlib, on frames where both have a face: correlation, both 5-95% ranges."""
    pairs = np.array([(eye_aspect_ratio(r.tracked), eye_aspect_ratio(r.dlib)) for r in results
                      if r.tracked is not None and r.dlib is not None]).reshape(-1, 2)
    if len(pairs) < 3:
        return None, None, None
    ranges = [[round(float(v), 3) for v in np.percentile(pairs[:, k], [5, 95])] for k in (0, 1)]
    return round(float(np.corrcoef(pairs.T)[0, 1]), 3), ranges[0], ranges[1]


def draw(frame: np.ndarray, result: FrameResult, label: str) -> np.ndarray:
    """The frame with mesh contours (green), the tracker's 68 points (red) and dlib's (blue)."""
    image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    if result.mesh is not None:
        for name, line in MESH_CONTOURS.items():
            polyline = np.round(result.mesh[list(line), :2]).astype(np.int32)
            cv2.polylines(image, [polyline], name in CLOSED, (60, 200, 60), 1, cv2.LINE_AA)
    for points, colour in ((result.dlib, (255, 120, 0)), (result.tracked, (0, 0, 255))):
        for x, y in points if points is not None else []:
            cv2.circle(image, (round(float(x)), round(float(y))), 2, colour, -1, cv2.LINE_AA)
    cv2.putText(image, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
    return image


def picture(panels: list[np.ndarray], height: int = 360) -> np.ndarray:
    """Panels scaled to one height, two per row."""
    scaled = [cv2.resize(p, (round(p.shape[1] * height / p.shape[0]), height)) for p in panels]
    width = max(p.shape[1] for p in scaled)
    scaled = [cv2.copyMakeBorder(p, 0, 0, 0, width - p.shape[1], cv2.BORDER_CONSTANT) for p in scaled]
    if len(scaled) % 2:
        scaled.append(np.zeros_like(scaled[0]))
    return np.vstack([np.hstack(scaled[i:i + 2]) for i in range(0, len(scaled), 2)])


def _nme_frames(results: list[FrameResult]) -> list[tuple[int, str]]:
    """The median- and worst-NME frames, or for a clip without NME the first false face or a middle frame."""
    scored = [(r.nme, i) for i, r in enumerate(results) if r.nme is not None]
    if scored:
        scored.sort()
        return [(scored[len(scored) // 2][1], "median NME"), (scored[-1][1], "worst NME")]
    false = [i for i, r in enumerate(results) if r.dlib is None and r.tracked is not None]
    return [(false[0], "false face")] if false else [(len(results) // 2, "no face")]


def chosen_frames(results: list[FrameResult]) -> list[tuple[int, str]]:
    """Typical and worst frames, plus the first tracked frame after the face returns (if it does)."""
    chosen = _nme_frames(results)
    later = [x for x in face_returns(results) if x["frame"] > 0 and x["frames_to_reacquire"] is not None]
    if later:
        chosen.append((later[0]["frame"] + later[0]["frames_to_reacquire"], "face back"))
    return chosen


def markdown(reports: list[ClipReport]) -> str:
    rows = ["| clip | frames | dlib faces | tracked / dlib faces | NME mean | NME median | NME p90 | false faces |"
            " face (re)appears @frame: frames to pick it up | ms/frame (shared CPU) | EAR corr vs dlib |"
            " EAR 5-95%: tracker / dlib |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        returns = ", ".join(f"@{x['frame']}: {x['frames_to_reacquire']}" for x in r.returns) or "-"
        rows.append(f"| {r.clip} | {r.frames} | {r.dlib_faces} | {r.tracked_of_dlib_faces:.3f} | {r.nme_mean} | "
                    f"{r.nme_median} | {r.nme_p90} | {r.false_faces} | {returns} | {r.ms_per_frame} | "
                    f"{_dash(r.ear_corr)} | {_span(r.ear_range)} / {_span(r.dlib_ear_range)} |")
    return "\n".join(rows) + "\n"


def _dash(value: object) -> str:
    return "-" if value is None else str(value)


def _span(values: list[float] | None) -> str:
    return "-" if values is None else f"{values[0]}-{values[1]}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.facemesh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for report.json, report.md, frames.png")
    parser.add_argument("--clips", nargs="+", default=[*TALKING_CLIPS, *EXIT_CLIPS],
                        help='sample videos; "a+b" plays one after the other, "a:reversed" plays backwards')
    parser.add_argument("--limit", type=int, default=None, help="only the first N frames of each clip")
    parser.add_argument("--runtime", choices=["torch", "onnx"], default="torch")
    parser.add_argument("--detect-every", type=int, default=MeshTrackerConfig.detect_every)
    parser.add_argument("--eyes-every", type=int, default=MeshTrackerConfig.eyes_every,
                        help="run the eye network every N-th frame of a stream (default: every frame)")
    parser.add_argument("--no-refine-eyes", dest="refine_eyes", action="store_false",
                        help="FaceMesh's own eyelids, without the eye network (the before of the eyes comparison)")
    args = parser.parse_args(argv)
    config = MeshTrackerConfig(runtime=RuntimeConfig(runtime=args.runtime), detect_every=args.detect_every,
                               refine_eyes=args.refine_eyes, eyes_every=args.eyes_every)
    stage = MeshLandmarkStage(config)
    reports, panels = [], []
    for clip in args.clips:
        frames = clip_frames(clip, args.limit)
        results, elapsed = track_clip(stage, frames)
        reports.append(summarise(clip, results, elapsed))
        panels += [draw(frames[i], results[i], f"{clip} #{i} {why}") for i, why in chosen_frames(results)]
        print(markdown(reports[-1:]).splitlines()[-1], file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"config": {"runtime": args.runtime, "detect_every": args.detect_every, "limit": args.limit,
                         "refine_eyes": args.refine_eyes, "eyes_every": args.eyes_every},
              "machine": machine_info(), "clips": [asdict(r) for r in reports]}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    (args.out / "report.md").write_text(markdown(reports))
    cv2.imwrite(str(args.out / "frames.png"), picture(panels))
    print(markdown(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())

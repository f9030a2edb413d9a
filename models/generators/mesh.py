"""Generator `mesh`: the target photo re-rendered on its own 3-D face mesh, driven in 3-D.

Target side (once per target choice): the photo's 468-point FaceMesh, its head frame, the canonical
triangulation with per-triangle texture sources (mirrored where the photo shows a triangle edge-on) and
an outer layer for hair, ears and background (models/mesh3d/template.py). Per frame: the driver's 3-D
head pose and expression move the target's mesh (models/mesh3d/transfer.py), every output pixel samples
the photo through the nearest front-facing triangle that covers it (models/mesh3d/render.py), and an
opened mouth gets the target's teeth or a shaded cavity (models/generators/paint.py). Eyes close with the
target's own lid skin: the lids are part of the mesh.

CPU: OpenCV fills the triangles of one face at a time (fastest measured there). CUDA: one batched torch
rasteriser + grid_sample for the whole batch. Both give the same map within a stated tolerance
(tests/models/test_mesh_generator.py).
"""

from __future__ import annotations

import numpy as np

from models.facemesh.mapping import to_ibug68
from models.generators.base import GenerateRequest, Generator
from models.generators.paint import face_colours, paint_mouth
from models.mesh3d.render import Layout, layout, sample, sampling_map_cpu
from models.mesh3d.template import MeshTemplate, build_template
from models.mesh3d.transfer import DrivenMesh, TransferConfig, head_frame


class MeshGenerator(Generator):
    needs_mesh = True

    def prepare(self, images: list[np.ndarray], landmarks: list[np.ndarray],
                meshes: list[np.ndarray] | None = None) -> dict:
        if meshes is None or len(meshes) != len(images):
            raise ValueError("the mesh generator needs a face mesh of every target photo")
        config = TransferConfig(output_size=self.output_size)
        templates = [build_template(image, mesh, config) for image, mesh in zip(images, meshes, strict=True)]
        rotations = [head_frame(t.mesh).rotation for t in templates]
        colours = [face_colours(image, to_ibug68(mesh)) for image, mesh in zip(images, meshes, strict=True)]
        return {"templates": templates, "rotations": rotations, "colours": colours}

    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        return [image for image, _ in self._render(requests)]

    def area_ratio_maps(self, requests: list[GenerateRequest]) -> list[np.ndarray | None]:
        return [area for _, area in self._render(requests)]

    def _render(self, requests: list[GenerateRequest]) -> list[tuple[np.ndarray, np.ndarray]]:
        frames = [self._layout(request) for request in requests]
        if self.settings.device.startswith("cuda"):
            return self._render_torch(requests, frames)
        results = []
        for request, (k, driven, frame_layout) in zip(requests, frames, strict=True):
            template: MeshTemplate = request.cache["templates"][k]
            map_xy, area = sampling_map_cpu(frame_layout, self.output_size)
            image = sample(template.image, map_xy)
            paint_mouth(image, to_ibug68(driven.points), request.cache["colours"][k])
            results.append((image, area))
        return results

    def _render_torch(self, requests: list[GenerateRequest], frames: list[tuple[int, DrivenMesh, Layout]]
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        import torch

        from models.mesh3d.render import sample_torch, sampling_maps_torch

        device = self.settings.device
        maps, areas = sampling_maps_torch([frame_layout for _, _, frame_layout in frames], self.output_size, device)
        photos = np.stack([request.cache["templates"][k].image for request, (k, _, _) in zip(requests, frames,
                                                                                           strict=True)])
        tensor = torch.from_numpy(photos).to(device).permute(0, 3, 1, 2).float()
        images = sample_torch(tensor, maps).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
        results = []
        for index, (request, (k, driven, _)) in enumerate(zip(requests, frames, strict=True)):
            image = np.ascontiguousarray(images[index])
            paint_mouth(image, to_ibug68(driven.points), request.cache["colours"][k])
            results.append((image, areas[index].cpu().numpy()))
        return results

    def _layout(self, request: GenerateRequest) -> tuple[int, DrivenMesh, Layout]:
        if request.driver_mesh is None or request.neutral_mesh is None:
            raise ValueError("the mesh generator needs the driver's face mesh (use --landmarks mesh)")
        templates: list[MeshTemplate] = request.cache["templates"]
        driven = templates[0].transfer.drive(request.driver_mesh, request.neutral_mesh)
        k = self._pick_source(request.cache["rotations"], driven)
        if k:
            driven = templates[k].transfer.drive(request.driver_mesh, request.neutral_mesh)
        return k, driven, layout(templates[k], driven)

    @staticmethod
    def _pick_source(rotations: list[np.ndarray], driven: DrivenMesh) -> int:
        """Few-shot: the photo whose head pose is closest to the pose the avatar is about to show."""
        if len(rotations) == 1:
            return 0
        wanted = driven.motion.rotation @ rotations[0]
        angles = [np.arccos(np.clip((np.trace(wanted @ r.T) - 1) / 2, -1, 1)) for r in rotations]
        return int(np.argmin(angles))

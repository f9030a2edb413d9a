"""The trivial baseline: the target photo unchanged, whatever the driver does."""

from __future__ import annotations

import numpy as np

from models.generators.base import GenerateRequest, Generator


class StillGenerator(Generator):
    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        return [request.images[0].copy() for request in requests]

    def area_ratio_maps(self, requests: list[GenerateRequest]) -> list[np.ndarray | None]:
        """The identity map: every output pixel samples its own place in the photo (area ratio 1)."""
        return [np.ones((self.output_size, self.output_size), np.float32) for _ in requests]

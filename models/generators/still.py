"""The trivial baseline: the target photo unchanged, whatever the driver does."""

from __future__ import annotations

import numpy as np

from models.generators.base import GenerateRequest, Generator


class StillGenerator(Generator):
    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        return [request.images[0].copy() for request in requests]

"""Returns the driver frame itself (centre square, resized): measures pure media cost."""

from __future__ import annotations

import cv2
import numpy as np

from models.generators.base import GenerateRequest, Generator


def centre_square(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return cv2.resize(image[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


class PassthroughGenerator(Generator):
    needs_landmarks = False

    def generate(self, requests: list[GenerateRequest]) -> list[np.ndarray]:
        return [centre_square(r.driver_frame, self.output_size) for r in requests]

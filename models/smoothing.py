"""One Euro filter (Casiez et al. 2012): removes landmark jitter at rest without lag when moving fast."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    min_cutoff: float = 1.5  # Hz: lower = smoother at rest
    beta: float = 0.05  # how fast the cutoff rises with speed (per landmark px/s, scaled by face size)
    derivative_cutoff: float = 1.0


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    def __init__(self, config: OneEuroConfig = OneEuroConfig()) -> None:
        self.config = config
        self._value: np.ndarray | None = None
        self._speed: np.ndarray | None = None
        self._time: float | None = None

    def reset(self) -> None:
        self._value = self._speed = self._time = None

    def __call__(self, value: np.ndarray, timestamp: float, scale: float = 1.0) -> np.ndarray:
        """Filter `value`; `scale` (e.g. face size in px) makes beta independent of resolution."""
        if self._value is None or self._time is None or timestamp <= self._time:
            self._value, self._speed, self._time = value.copy(), np.zeros_like(value), timestamp
            return value
        dt = timestamp - self._time
        speed = (value - self._value) / dt
        a_d = _alpha(self.config.derivative_cutoff, dt)
        self._speed = a_d * speed + (1 - a_d) * self._speed
        cutoff = self.config.min_cutoff + self.config.beta * np.abs(self._speed) / max(scale, 1e-6) * 100
        tau = 1.0 / (2 * np.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        self._value = a * value + (1 - a) * self._value
        self._time = timestamp
        return self._value.copy()

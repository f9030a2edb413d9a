"""The caller's own range of mouth openings, and the gain that makes it the avatar's full range.

A face mesh regressed from a small, noisy webcam face (70 px wide) opens and closes its lips over a narrower range
than the caller's mouth does, and a closed-mouthed talker opens little. So, as eye openness is read against the
caller's own open eye, the mouth is read against the caller's own range: the spread (5-95 %) of their openings
over the last seconds, widened only (a quiet minute does not raise the gain again), sets a gain that maps the
range seen onto a full conversational range. Bounded, so a silent caller's lip jitter is not blown up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MouthRangeConfig:
    # A talking caller's 5-95 % spread of mouth_openness, as the avatar should show it (tuned on the tune clips:
    # cap12 webcam, franck, the webcam_like clips; see docs/mesh_generator.md).
    full_range: float = 0.28
    max_gain: float = 2.2
    min_gain: float = 1.0  # never smaller than measured: a wide-mouthed caller is shown as they are
    history: int = 300  # frames (10 s at 30 fps)
    min_frames: int = 30  # before a second of talking is seen: the gain stays at its start
    start_gain: float = 1.5


@dataclass
class MouthRange:
    config: MouthRangeConfig = field(default_factory=MouthRangeConfig)
    recent: deque = field(default_factory=deque)
    widest: float = 0.0  # the widest 5-95 % spread seen so far this session
    gain: float = 1.5
    closed: float | None = None  # the caller's closed mouth: the 5th percentile of recent openings (None: too few)

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.config.history)
        self.gain = self.config.start_gain

    def reset(self) -> None:
        self.recent.clear()
        self.widest = 0.0
        self.gain = self.config.start_gain
        self.closed = None

    def update(self, openness: float) -> float:
        """Add this frame's mouth_openness; -> the gain for it."""
        self.recent.append(float(openness))
        if len(self.recent) >= self.config.min_frames:
            low, high = np.percentile(np.fromiter(self.recent, float), [5, 95])
            self.closed = float(low)
            self.widest = max(self.widest, float(high - low))
            gain = self.config.full_range / max(self.widest, 1e-6)
            self.gain = float(np.clip(gain, self.config.min_gain, self.config.max_gain))
        return self.gain

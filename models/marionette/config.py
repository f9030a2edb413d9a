"""Network configurations: `lite` (real time on 2 CPU cores), `base`, and `paper` (the paper's widths)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MarioNETteConfig:
    name: str
    image_size: int = 256
    base_channels: int = 16  # channels after the stem; doubled at each down block up to max_channels
    max_channels: int = 128
    down_blocks: int = 4  # driver encoder and target encoder downsampling blocks
    up_blocks: int = 4  # decoder upsampling blocks; fewer than down_blocks ends with a plain upsampling
    attention_heads: int = 4
    attention_blocks: int = 1
    stem_stride: int = 1  # 2 halves every feature map (about 4x fewer FLOPs); the output is upsampled
    max_flow: float = 0.25  # largest predicted offset, in normalised coordinates (-1..1 spans the image)

    def channels(self, level: int) -> int:
        """Channels of the feature map after `level` down blocks (level 0 = stem)."""
        return min(self.base_channels * 2**level, self.max_channels)


CONFIGS = {
    # lite: features start at half resolution, so one 256x256 frame costs <= ~3 GFLOPs on the driver side.
    "lite": MarioNETteConfig("lite", base_channels=16, max_channels=128, down_blocks=4, up_blocks=4,
                             attention_heads=4, stem_stride=2),
    "base": MarioNETteConfig("base", base_channels=32, max_channels=256, down_blocks=4, up_blocks=4,
                             attention_heads=8),
    # The paper: 5 down / 4 up residual blocks, 64..512 channels, then a final upsampling to full size.
    "paper": MarioNETteConfig("paper", base_channels=64, max_channels=512, down_blocks=5, up_blocks=4,
                              attention_heads=8, attention_blocks=2),
}

"""Building blocks: residual down/up blocks, flow warping, 2-D positional encoding, attention block."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class ResBlockDown(nn.Module):
    """Pre-activation residual block that halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _norm(in_channels), nn.LeakyReLU(0.2), nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels), nn.LeakyReLU(0.2), nn.Conv2d(out_channels, out_channels, 3, padding=1),
            nn.AvgPool2d(2),
        )
        self.skip = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


class ResBlockUp(nn.Module):
    """Pre-activation residual block that doubles the resolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _norm(in_channels), nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            _norm(out_channels), nn.LeakyReLU(0.2), nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.skip(x)


def identity_grid(batch: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    ys = torch.linspace(-1, 1, height, device=like.device, dtype=like.dtype)
    xs = torch.linspace(-1, 1, width, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0).expand(batch, -1, -1, -1)


def warp(features: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `features` (N, C, h, w) at identity + flow; flow (N, 2, H, W) in normalised units, resized."""
    height, width = features.shape[-2:]
    if flow.shape[-2:] != (height, width):
        flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=True)
    grid = identity_grid(features.shape[0], height, width, features) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=True)


def positional_encoding(channels: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(h*w, channels) 2-D sinusoidal encoding: half the channels encode y, half x (transformer style)."""
    quarter = channels // 4
    frequencies = torch.exp(torch.arange(quarter, device=like.device, dtype=like.dtype)
                            * (-math.log(10000.0) / max(quarter, 1)))
    ys = torch.arange(height, device=like.device, dtype=like.dtype)[:, None] * frequencies
    xs = torch.arange(width, device=like.device, dtype=like.dtype)[:, None] * frequencies
    y_code = torch.cat([ys.sin(), ys.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
    x_code = torch.cat([xs.sin(), xs.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
    code = torch.cat([y_code, x_code], dim=-1).reshape(height * width, 4 * quarter)
    if code.shape[1] < channels:
        code = F.pad(code, (0, channels - code.shape[1]))
    return code


class ImageAttentionBlock(nn.Module):
    """The driver feature map attends over all positions of all K target feature maps jointly.

    Softmax runs over the K*h*w target positions of each sample (never over the batch); positional
    encodings are added to queries and keys; then residual + instance norm and a 1x1 feed-forward.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Linear(channels, channels)
        self.value = nn.Linear(channels, channels)
        self.out = nn.Conv2d(channels, channels, 1)
        self.norm1 = nn.InstanceNorm2d(channels, affine=True)
        self.feed_forward = nn.Sequential(nn.Conv2d(channels, 2 * channels, 1), nn.LeakyReLU(0.2),
                                          nn.Conv2d(2 * channels, channels, 1))
        self.norm2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, driver: torch.Tensor, targets: torch.Tensor, target_positions: torch.Tensor) -> torch.Tensor:
        """driver (N, C, h, w); targets (N, K*h'*w', C); target_positions (K*h'*w', C)."""
        batch, channels, height, width = driver.shape
        head_dim = channels // self.heads
        queries = self.query(driver).flatten(2).transpose(1, 2)  # (N, h*w, C)
        queries = queries + positional_encoding(channels, height, width, driver)
        keys = self.key(targets + target_positions)
        values = self.value(targets)

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(batch, -1, self.heads, head_dim).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(queries), split(keys), split(values))
        attended = attended.transpose(1, 2).reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        x = self.norm1(driver + self.out(attended))
        return self.norm2(x + self.feed_forward(x))

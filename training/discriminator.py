"""Discriminator for training: residual, spectral-normalised, conditioned on the landmark image by
projection (Miyato & Koyama 2018): the score adds <features(image), embed(landmark image)>, so it judges
whether the image is real *and* matches the pose and expression it should show."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from models.marionette.config import MarioNETteConfig


class _SNResDown(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = spectral_norm(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)  # no activation on raw pixels
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class ProjectionDiscriminator(nn.Module):
    def __init__(self, config: MarioNETteConfig) -> None:
        super().__init__()
        levels = config.down_blocks + 1
        self.image_blocks = self._tower(config, levels)
        self.landmark_blocks = self._tower(config, levels)  # embeds the condition for the projection
        self.linear = spectral_norm(nn.Linear(config.channels(levels), 1))

    @staticmethod
    def _tower(config: MarioNETteConfig, levels: int) -> nn.ModuleList:
        return nn.ModuleList(_SNResDown(3 if i == 0 else config.channels(i), config.channels(i + 1), first=i == 0)
                             for i in range(levels))

    def forward(self, image: torch.Tensor, landmark_image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Score per sample (N,) and the intermediate image features (for a feature-matching loss)."""
        features = []
        x, y = image, landmark_image
        for image_block, landmark_block in zip(self.image_blocks, self.landmark_blocks, strict=True):
            x, y = image_block(x), landmark_block(y)
            features.append(x)
        pooled = F.relu(x).sum(dim=(2, 3))
        condition = F.relu(y).sum(dim=(2, 3))
        return self.linear(pooled).squeeze(1) + (pooled * condition).sum(dim=1), features

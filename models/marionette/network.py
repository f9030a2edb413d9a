"""The MarioNETte generator: driver encoder, target encoder (U-Net + flow), blender, decoder.

The target side (`encode_targets`) runs once per target choice; its outputs are the cache that every
frame's `decode` reads, so per frame only the driver encoder, the blender and the decoder run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.marionette.blocks import ImageAttentionBlock, ResBlockDown, ResBlockUp, positional_encoding, warp
from models.marionette.config import MarioNETteConfig


class DriverEncoder(nn.Module):
    def __init__(self, config: MarioNETteConfig) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, config.channels(0), 3, stride=config.stem_stride, padding=1)
        self.downs = nn.ModuleList(ResBlockDown(config.channels(i), config.channels(i + 1))
                                   for i in range(config.down_blocks))

    def forward(self, landmark_image: torch.Tensor) -> torch.Tensor:
        x = self.stem(landmark_image)
        for block in self.downs:
            x = block(x)
        return x


class TargetEncoder(nn.Module):
    """U-Net over target image + its landmark image; its decoder predicts a flow that pose-normalises the
    encoder's feature maps at every scale."""

    def __init__(self, config: MarioNETteConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Conv2d(6, config.channels(0), 3, stride=config.stem_stride, padding=1)
        self.downs = nn.ModuleList(ResBlockDown(config.channels(i), config.channels(i + 1))
                                   for i in range(config.down_blocks))
        levels = range(config.down_blocks, 0, -1)
        self.ups = nn.ModuleList(
            ResBlockUp(config.channels(level) * (1 if level == config.down_blocks else 2), config.channels(level - 1))
            for level in levels)
        self.flow = nn.Conv2d(2 * config.channels(0), 2, 3, padding=1)
        nn.init.zeros_(self.flow.weight)  # start from the identity warp
        nn.init.zeros_(self.flow.bias)

    def forward(self, image: torch.Tensor, landmark_image: torch.Tensor) -> list[torch.Tensor]:
        """Pose-normalised feature maps, one per level 1..down_blocks (level L has size / 2**L)."""
        x = self.stem(torch.cat([image, landmark_image], dim=1))
        skips = [x]
        for block in self.downs:
            x = block(x)
            skips.append(x)
        y = skips[-1]
        for index, block in enumerate(self.ups):
            y = block(y if index == 0 else torch.cat([y, skips[-1 - index]], dim=1))
        flow = torch.tanh(self.flow(torch.cat([y, skips[0]], dim=1))) * self.config.max_flow
        return [warp(features, flow) for features in skips[1:]]


class Decoder(nn.Module):
    """Warp-alignment blocks: at each scale a flow from the decoder features aligns every target's
    normalised features to the driver; their mean over K joins the decoder features before upsampling."""

    def __init__(self, config: MarioNETteConfig) -> None:
        super().__init__()
        self.config = config
        self.flows = nn.ModuleList()
        self.ups = nn.ModuleList()
        for step in range(config.up_blocks):
            level = config.down_blocks - step
            in_channels = config.channels(level)  # the previous up block outputs channels(level)
            self.flows.append(nn.Conv2d(in_channels, 2, 1))
            self.ups.append(ResBlockUp(in_channels + config.channels(level), config.channels(level - 1)))
        for flow in self.flows:
            nn.init.zeros_(flow.weight)
            nn.init.zeros_(flow.bias)
        final_channels = config.channels(config.down_blocks - config.up_blocks)
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(final_channels, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(final_channels, 3, 3, padding=1))

    def forward(self, x: torch.Tensor, target_features: list[torch.Tensor]) -> torch.Tensor:
        """x (N, C, h, w) blended features; target_features[level-1]: (N, K, C_l, h_l, w_l)."""
        for step, (flow_layer, up) in enumerate(zip(self.flows, self.ups, strict=True)):
            level = self.config.down_blocks - step
            targets = target_features[level - 1]
            batch, shots = targets.shape[:2]
            flow = torch.tanh(flow_layer(x)) * self.config.max_flow
            flow_per_shot = flow.unsqueeze(1).expand(-1, shots, -1, -1, -1).reshape(batch * shots, 2, *flow.shape[-2:])
            aligned = warp(targets.reshape(batch * shots, *targets.shape[2:]), flow_per_shot)
            aligned = aligned.reshape(batch, shots, *aligned.shape[1:]).mean(dim=1)
            x = up(torch.cat([x, aligned], dim=1))
        if x.shape[-1] != self.config.image_size:
            x = F.interpolate(x, size=(self.config.image_size, self.config.image_size), mode="bilinear",
                              align_corners=False)
        return torch.tanh(self.to_rgb(x))


class MarioNETteGenerator(nn.Module):
    def __init__(self, config: MarioNETteConfig) -> None:
        super().__init__()
        self.config = config
        self.driver_encoder = DriverEncoder(config)
        self.target_encoder = TargetEncoder(config)
        bottleneck = config.channels(config.down_blocks)
        self.blender = nn.ModuleList(ImageAttentionBlock(bottleneck, config.attention_heads)
                                     for _ in range(config.attention_blocks))
        self.decoder = Decoder(config)

    def encode_targets(self, images: torch.Tensor, landmark_images: torch.Tensor) -> list[torch.Tensor]:
        """(N, K, 3, H, W) images and landmark images -> per-level (N, K, C, h, w) normalised features."""
        batch, shots = images.shape[:2]
        features = self.target_encoder(images.flatten(0, 1), landmark_images.flatten(0, 1))
        return [f.reshape(batch, shots, *f.shape[1:]) for f in features]

    def decode(self, driver_landmark_image: torch.Tensor, target_features: list[torch.Tensor]) -> torch.Tensor:
        """The per-frame part: (N, 3, H, W) driver landmark image + cached target features -> image."""
        driver = self.driver_encoder(driver_landmark_image)
        bottleneck = target_features[-1]  # (N, K, C, h, w)
        batch, shots, channels, height, width = bottleneck.shape
        keys = bottleneck.permute(0, 1, 3, 4, 2).reshape(batch, shots * height * width, channels)
        positions = positional_encoding(channels, height, width, keys).repeat(shots, 1)
        x = driver
        for block in self.blender:
            x = block(x, keys, positions)
        return self.decoder(x, target_features)

    def forward(self, driver_landmark_image: torch.Tensor, images: torch.Tensor,
                landmark_images: torch.Tensor) -> torch.Tensor:
        return self.decode(driver_landmark_image, self.encode_targets(images, landmark_images))

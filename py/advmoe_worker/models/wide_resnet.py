"""Wide ResNets (pre-activation, CIFAR): WRN-28-4, WRN-28-10, WRN-34-10.

As in the paper's code every conv inside a block is r-scaled, the 1x1 projection shortcuts
included (27 MoE layers in WRN-28-10), and so is the 3x3 stem. One fix: the paper's code
pre-activates the input (BN-ReLU) but then feeds the raw input to conv1 and the shortcut of
width-changing blocks; here both read the pre-activated input, as in the original WRN.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvFactory, RoutedModule, RoutedSequential
from .registry import BackboneConfig, register_model


class WideBlock(RoutedModule):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a residual (1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, conv: ConvFactory):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv(in_channels, out_channels, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3, 1, 1)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = conv(in_channels, out_channels, 1, stride, 0)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        pre = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre, ctx)
        out = self.conv1(pre, ctx)
        out = self.conv2(F.relu(self.bn2(out)), ctx)
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-depth-k: stem 16, then 3 stages of (depth-4)/6 blocks at 16k/32k/64k channels."""

    def __init__(self, depth: int, widen: int, cfg: BackboneConfig):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        stem_channels = cfg.narrow(16)
        self.stem = nn.Conv2d(cfg.in_channels, stem_channels, 3, 1, 1, bias=False)
        in_channels = stem_channels
        stages = []
        for i, base in enumerate((16 * widen, 32 * widen, 64 * widen)):
            out_channels = cfg.narrow(base)
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(WideBlock(in_channels, out_channels, stride, cfg.conv))
                in_channels = out_channels
            stages.append(RoutedSequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn = nn.BatchNorm2d(in_channels)
        self.num_features = in_channels
        self.fc = nn.Linear(in_channels, cfg.num_classes)

    def forward_features(self, x: Tensor, ctx=None) -> Tensor:
        x = self.stem(x)  # (B, 16r, H, W)
        x = self.block1(x, ctx)
        x = self.block2(x, ctx)
        x = self.block3(x, ctx)  # (B, 64kr, H/4, W/4)
        return F.relu(self.bn(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(x.mean(dim=(2, 3)))  # (B, C) -> (B, K)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        return self.forward_head(self.forward_features(x, ctx))


@register_model("wrn28_4", min_input_size=4, description="WideResNet-28-4, CIFAR")
def wrn28_4(cfg: BackboneConfig) -> WideResNet:
    return WideResNet(28, 4, cfg)


@register_model("wrn28_10", min_input_size=4, description="WideResNet-28-10, CIFAR")
def wrn28_10(cfg: BackboneConfig) -> WideResNet:
    return WideResNet(28, 10, cfg)


@register_model("wrn34_10", min_input_size=4, description="WideResNet-34-10, CIFAR")
def wrn34_10(cfg: BackboneConfig) -> WideResNet:
    return WideResNet(34, 10, cfg)

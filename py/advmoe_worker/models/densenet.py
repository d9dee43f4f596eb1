"""DenseNet-BC-40 for CIFAR (growth k = 12, bottleneck 4k, compression 0.5), as in the paper's code.

Depth 40 with bottleneck layers gives 3 dense blocks of (40 - 4) / 6 = 6 layers, each
BN-ReLU-1x1(4k)-BN-ReLU-3x3(k). Both convs of every dense layer are MoE (36 MoE layers); the
stem (2k channels) and the transition 1x1 convs are plain and shared. The growth rate, the
bottleneck and the stem are r-scaled, so a dense layer appends floor(r*k) channels whichever
expert ran; transitions keep half of whatever arrives.

The paper's code cannot build this model as MoE (it forwards `ratio` into its MoE conv); here
it is one more builder of the same registry.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvFactory, RoutedModule, RoutedSequential
from .registry import BackboneConfig, register_model


class DenseLayer(RoutedModule):
    """BN-ReLU-conv1x1 (bottleneck) then BN-ReLU-conv3x3 (growth); returns only the new maps."""

    def __init__(self, in_channels: int, growth: int, bottleneck: int, conv: ConvFactory):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv(in_channels, bottleneck, 1, 1, 0)
        self.bn2 = nn.BatchNorm2d(bottleneck)
        self.conv2 = conv(bottleneck, growth, 3, 1, 1)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        out = self.conv1(F.relu(self.bn1(x)), ctx)
        return self.conv2(F.relu(self.bn2(out)), ctx)  # (B, growth, H, W)


class DenseBlock(RoutedModule):
    """Layers that each read the concatenation of everything before them."""

    def __init__(self, num_layers: int, in_channels: int, growth: int, conv: ConvFactory):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth, growth, 4 * growth, conv) for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x, ctx)], dim=1)  # (B, C + growth, H, W)
        return x


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (halves the channels) then 2x2 average pool; shared by all experts."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.AvgPool2d(2, 2),
        )


class DenseNet(nn.Module):
    """DenseNet-BC for 32 px inputs: 3x3 stem, dense blocks separated by transitions."""

    def __init__(self, depth: int, growth_rate: int, cfg: BackboneConfig, compression: float = 0.5):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"DenseNet-BC depth must be 6n+4, got {depth}")
        per_block = (depth - 4) // 6
        growth = cfg.narrow(growth_rate)
        channels = cfg.narrow(2 * growth_rate)
        self.stem = nn.Conv2d(cfg.in_channels, channels, 3, 1, 1, bias=False)
        stages: list[nn.Module] = []
        for i in range(3):
            block = DenseBlock(per_block, channels, growth, cfg.conv)
            stages.append(block)
            channels = block.out_channels
            if i < 2:
                reduced = max(1, int(channels * compression))
                stages.append(Transition(channels, reduced))
                channels = reduced
        self.features = RoutedSequential(*stages)
        self.bn = nn.BatchNorm2d(channels)
        self.num_features = channels
        self.fc = nn.Linear(channels, cfg.num_classes)

    def forward_features(self, x: Tensor, ctx=None) -> Tensor:
        x = self.features(self.stem(x), ctx)  # (B, C, H/4, W/4)
        return F.relu(self.bn(x))

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(x.mean(dim=(2, 3)))  # (B, C) -> (B, K)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        return self.forward_head(self.forward_features(x, ctx))


@register_model("densenet_cifar", min_input_size=4, description="DenseNet-BC-40 (k=12), CIFAR")
def densenet_cifar(cfg: BackboneConfig) -> DenseNet:
    return DenseNet(40, 12, cfg)

"""VGG-16 with BatchNorm, CIFAR head (as in the paper's code).

Every conv is r-scaled; all but the first are MoE (12 MoE layers), the first stays a plain
conv shared by all experts. Features end after the fourth max pool (2x2 at 32 px); the head
is a 2x2 adaptive average pool then Linear -> 256 -> 256 -> classes (256 scales with width,
not with r: the head is shared).
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import DenseConv2d, RoutedSequential
from .registry import BackboneConfig, register_model

# Channels per conv, "M" = 2x2 max pool. The fifth stage has no pool: the head pools to 2x2.
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class VGG(nn.Module):
    """conv-BN-ReLU stack from `layout`, then the 2x2-pool MLP head."""

    def __init__(self, layout: tuple[int | str, ...], cfg: BackboneConfig):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = cfg.in_channels
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            out_channels = cfg.narrow(int(item))
            conv = DenseConv2d if not layers else cfg.conv  # the first conv is shared
            layers += [conv(in_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.ReLU()]
            in_channels = out_channels
        self.features = RoutedSequential(*layers)
        hidden = cfg.channels(256)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(
            nn.Linear(in_channels * 4, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, cfg.num_classes),
        )
        self.num_features = in_channels * 4

    def forward_features(self, x: Tensor, ctx=None) -> Tensor:
        return self.features(x, ctx)  # (B, 512r, H/16, W/16)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(x).flatten(1))  # (B, 4C) -> (B, K)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        return self.forward_head(self.forward_features(x, ctx))


@register_model("vgg16_bn", min_input_size=16, description="VGG-16 with BatchNorm, CIFAR head")
def vgg16_bn(cfg: BackboneConfig) -> VGG:
    return VGG(VGG16, cfg)

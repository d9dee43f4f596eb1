"""ResNets, CIFAR stem (3x3, stride 1) and ImageNet stem (7x7 stride 2 + max pool).

Which layers are r-scaled (MoE in MoE models, narrow in S-Dense ones), as in the paper's code:
- CIFAR: every conv inside a block. The stem keeps its full width (64*width) and the 1x1
  projection shortcuts stay plain convs shared by all experts. So the first block of stage 1
  needs a projection (64 -> 64r channels) even at stride 1.
- ImageNet: every block conv and the projection (downsample) convs are MoE; the stem is
  r-scaled too.
S-Dense follows the same rule with plain convs, so an S-Dense model is exactly one pathway of
the MoE model built with the same ratio (the paper's code also narrows the CIFAR stem for
S-Dense, which is why its S-Dense ResNet-18 counts 0.139 GMACs to our 0.152).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvFactory, DenseConv2d, Projection, RoutedModule, RoutedSequential
from .registry import BackboneConfig, register_model


class BasicBlock(RoutedModule):
    """Two 3x3 convs plus a residual; `conv` builds the block convs, `shortcut_conv` the 1x1."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int,
        conv: ConvFactory,
        shortcut_conv: ConvFactory,
    ):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = conv(in_channels, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Projection(in_channels, out_channels, stride, shortcut_conv)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x, ctx)))
        out = self.bn2(self.conv2(out, ctx))
        shortcut = x if self.shortcut is None else self.shortcut(x, ctx)
        return F.relu(out + shortcut)


class Bottleneck(RoutedModule):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand x4, plus a residual."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int,
        conv: ConvFactory,
        shortcut_conv: ConvFactory,
    ):
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = conv(in_channels, planes, 1, 1, 0)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, out_channels, 1, 1, 0)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Projection(in_channels, out_channels, stride, shortcut_conv)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x, ctx)))
        out = F.relu(self.bn2(self.conv2(out, ctx)))
        out = self.bn3(self.conv3(out, ctx))
        shortcut = x if self.shortcut is None else self.shortcut(x, ctx)
        return F.relu(out + shortcut)


class ResNet(nn.Module):
    """ResNet with 4 stages of 64/128/256/512 planes (x width, x r inside blocks)."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        depths: tuple[int, int, int, int],
        cfg: BackboneConfig,
        imagenet_stem: bool,
    ):
        super().__init__()
        if imagenet_stem:
            stem_channels = cfg.narrow(64)
            self.stem = nn.Sequential(
                nn.Conv2d(cfg.in_channels, stem_channels, 7, 2, 3, bias=False),
                nn.BatchNorm2d(stem_channels),
                nn.ReLU(),
                nn.MaxPool2d(3, 2, 1),
            )
            shortcut_conv = cfg.conv
        else:
            stem_channels = cfg.channels(64)
            self.stem = nn.Sequential(
                nn.Conv2d(cfg.in_channels, stem_channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(stem_channels),
                nn.ReLU(),
            )
            shortcut_conv = DenseConv2d

        in_channels = stem_channels
        stages = []
        for i, (base, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            planes = cfg.narrow(base)
            blocks = []
            for j in range(depth):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(in_channels, planes, stride, cfg.conv, shortcut_conv))
                in_channels = planes * block.expansion
            stages.append(RoutedSequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.num_features = in_channels
        self.fc = nn.Linear(in_channels, cfg.num_classes)

    def forward_features(self, x: Tensor, ctx=None) -> Tensor:
        x = self.stem(x)  # (B, C_stem, H, W), H/4 with the ImageNet stem
        x = self.layer1(x, ctx)
        x = self.layer2(x, ctx)
        x = self.layer3(x, ctx)
        return self.layer4(x, ctx)  # (B, C, H/8, W/8), /32 with the ImageNet stem

    def forward_head(self, x: Tensor) -> Tensor:
        return self.fc(x.mean(dim=(2, 3)))  # (B, C) -> (B, K)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        return self.forward_head(self.forward_features(x, ctx))


@register_model("resnet18", min_input_size=8, description="ResNet-18, CIFAR stem")
def resnet18(cfg: BackboneConfig) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), cfg, imagenet_stem=False)


@register_model("resnet34", min_input_size=8, description="ResNet-34, CIFAR stem")
def resnet34(cfg: BackboneConfig) -> ResNet:
    return ResNet(BasicBlock, (3, 4, 6, 3), cfg, imagenet_stem=False)


@register_model("resnet50", min_input_size=8, description="ResNet-50 (bottleneck), CIFAR stem")
def resnet50(cfg: BackboneConfig) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), cfg, imagenet_stem=False)


@register_model("resnet18_imagenet", min_input_size=32, description="ResNet-18, ImageNet stem (7x7/2 + pool)")
def resnet18_imagenet(cfg: BackboneConfig) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), cfg, imagenet_stem=True)


@register_model("resnet50_imagenet", min_input_size=32, description="ResNet-50, ImageNet stem (7x7/2 + pool)")
def resnet50_imagenet(cfg: BackboneConfig) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), cfg, imagenet_stem=True)

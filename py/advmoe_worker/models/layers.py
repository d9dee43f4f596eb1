"""Plumbing shared by the backbones: modules that take the routing context along with x.

A backbone threads one routing context `ctx` through its blocks (`forward(x, ctx)`), and the
r-scaled convs inside them are built by an injected factory: `DenseConv2d` for a dense or
S-Dense model, `MoEConv2d` for an MoE model. So dense versus MoE is an argument of the
builder, never a second copy of the backbone. Dense models pass `ctx=None`.
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor, nn


class RoutedModule(nn.Module):
    """A module whose forward is `forward(x, ctx)`; `RoutedSequential` passes ctx to it."""


class ConvFactory(Protocol):
    """Builds a block conv: `(in_channels, out_channels, kernel_size, stride, padding)`."""

    def __call__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> RoutedModule: ...


class DenseConv2d(nn.Conv2d, RoutedModule):
    """A bias-free nn.Conv2d that accepts (and ignores) the routing context."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=False)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        return super().forward(x)


class RoutedSequential(nn.Sequential, RoutedModule):
    """nn.Sequential that hands `ctx` to the children that route and only x to the others."""

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        for module in self:
            x = module(x, ctx) if isinstance(module, RoutedModule) else module(x)
        return x


class Projection(RoutedModule):
    """Residual shortcut that changes width or stride: 1x1 conv then BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, conv: ConvFactory):
        super().__init__()
        self.conv = conv(in_channels, out_channels, 1, stride, 0)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, ctx=None) -> Tensor:
        return self.bn(self.conv(x, ctx))

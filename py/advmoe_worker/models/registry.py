"""The one registry of backbones: name -> builder, plus what the factory must check first.

A builder takes a `BackboneConfig` and returns a module with `forward(x, ctx) -> logits`,
`forward_features(x, ctx)` and `forward_head(features)`. Which layers are MoE and which are
shared is the builder's business; whether they are MoE at all is `config.conv`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..registry import Registry
from .layers import ConvFactory


def scale_channels(channels: int, factor: float) -> int:
    """floor(channels * factor), at least 1; the epsilon keeps 0.3*10 from landing on 2."""
    return max(1, math.floor(channels * factor + 1e-6))


@dataclass(frozen=True)
class BackboneConfig:
    """What every builder receives: geometry, the two width knobs and the block-conv type."""

    num_classes: int
    in_channels: int
    width: float  # multiplies every channel count, stem and classifier included
    ratio: float  # r: expert width in MoE models, S-Dense width in dense ones
    conv: ConvFactory  # builds the r-scaled convs: DenseConv2d or MoEConv2d

    def channels(self, base: int) -> int:
        """A shared (not r-scaled) layer's width: base * width."""
        return scale_channels(base, self.width)

    def narrow(self, base: int) -> int:
        """An r-scaled layer's width: floor(r * base * width), the C' of the MoE layers."""
        return scale_channels(self.channels(base), self.ratio)


Builder = Callable[[BackboneConfig], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """A registered backbone."""

    name: str
    builder: Builder
    min_input_size: int  # smallest input whose last feature map is still >= 1x1 before pooling
    description: str


MODELS: Registry[ModelEntry] = Registry("model arch")


def register_model(name: str, *, min_input_size: int, description: str):
    """Decorator that registers a builder under `name`."""

    def decorate(builder: Builder) -> Builder:
        MODELS.register(name, ModelEntry(name, builder, min_input_size, description))
        return builder

    return decorate


def list_models() -> list[str]:
    """Registered backbone names, sorted."""
    return MODELS.names()


def get_model_entry(name: str) -> ModelEntry:
    """The entry for `name`; NotFoundError listing the known names otherwise."""
    return MODELS.get(name, "arch")

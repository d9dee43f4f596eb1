"""Seeds derived from a base seed and a position, so every random draw can be replayed."""

from __future__ import annotations

import torch

_MASK = (1 << 64) - 1


def derive_seed(*parts: int) -> int:
    """Mixes integers into one 63-bit seed (splitmix64 over the parts)."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state + (int(part) & _MASK) + 0x9E3779B97F4A7C15) & _MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        state = z ^ (z >> 31)
    return state & ((1 << 63) - 1)


def generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from `parts`; draws are then moved to any device."""
    return torch.Generator().manual_seed(derive_seed(*parts))

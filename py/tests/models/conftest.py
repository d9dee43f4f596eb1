from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor


@pytest.fixture
def images() -> Callable[..., Tensor]:
    """Seeded pixels in [0, 1]: images(batch, size, channels=3, dtype=torch.float32)."""

    def make(batch: int, size: int, channels: int = 3, dtype: torch.dtype = torch.float32) -> Tensor:
        generator = torch.Generator().manual_seed(1234)
        return torch.rand(batch, channels, size, size, generator=generator, dtype=dtype)

    return make


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared small CPU extra OpenMP threads
    only spin against other processes; restored after each test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

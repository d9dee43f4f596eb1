"""Fixtures for the training tests."""

from __future__ import annotations

import pytest
import torch
from training_fixtures import DATA

from advmoe_worker.data import create_dataset


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    # other test suites may share the two cores; one thread keeps tiny models fast
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def synthetic():
    return create_dataset(DATA)

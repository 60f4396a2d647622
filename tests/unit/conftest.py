"""Fixtures of the unit tests."""
from __future__ import annotations

import pytest


@pytest.fixture
def one_thread():
    """Torch on one thread: tiny models run faster and the same on every machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

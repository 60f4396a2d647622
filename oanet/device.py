"""Which torch device a stage or a served model runs on, and how to name it in a record.

Its own module so that serving, the gate and the evaluation need not import the training loop.
torch is imported inside the functions: importing this module costs nothing.
"""
from __future__ import annotations

import os
import platform


def resolve_device(name: str = "auto"):
    """`auto`: CUDA when torch sees a GPU, else CPU; any other name as torch reads it (`cpu`, `cuda:1`)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from oanet.errors import OanetError
        raise OanetError(f"device is {name!r} but torch sees no CUDA device; use auto or cpu")
    return torch.device(name)


def device_name() -> str:
    """The GPU's name when torch sees one, else the CPU and its core count (the run's `oanet.device` tag)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"cpu: {platform.processor() or platform.machine()} x{os.cpu_count()}"

"""Torch devices: the one place that turns ``--device auto|cuda|cpu`` into a ``torch.device``."""
from __future__ import annotations

import torch

from sparsevid.errors import SparsevidError


def cuda_available() -> bool:
    return torch.cuda.is_available()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda if available else cpu; ``"cuda"`` without a GPU -> SparsevidError."""
    if isinstance(device, torch.device):
        device = device.type if device.index is None else f"{device.type}:{device.index}"
    device = str(device)
    if device == "auto":
        return torch.device("cuda" if cuda_available() else "cpu")
    if device.startswith("cuda"):
        if not cuda_available():
            raise SparsevidError(
                "CUDA was requested but no CUDA GPU is visible to PyTorch "
                f"(torch {torch.__version__})",
                fix="use --device cpu (or auto), or install a CUDA build of torch on a machine with an NVIDIA GPU")
        return torch.device(device)
    if device == "cpu":
        return torch.device("cpu")
    raise SparsevidError(f"unknown device {device!r}", fix="use one of auto, cuda, cpu")

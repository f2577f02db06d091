"""Choose the torch device a stage runs on, from a config or command-line string.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import re

import torch

from medtrans.errors import MedtransError

_DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for ``"auto"`` (a CUDA GPU when there is one, else the CPU), ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``.

    Raises:
        MedtransError: for any other string, or a CUDA device this machine does not have.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not _DEVICE_PATTERN.fullmatch(name):
        raise MedtransError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MedtransError(f"device: {name!r} was asked for, but no CUDA GPU is available; use 'cpu' or 'auto'")
        if device.index is not None and device.index >= count:
            raise MedtransError(f"device: {name!r} was asked for, but this machine has {count} CUDA GPU(s) "
                                f"(cuda:0 to cuda:{count - 1})")
    return device

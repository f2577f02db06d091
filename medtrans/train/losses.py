"""Adversarial loss for PatchGAN logits: vanilla (BCE with logits) or least squares."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GANMode = Literal["vanilla", "lsgan"]


class GANLoss(nn.Module):
    """Mean GAN loss of raw discriminator logits against an all-real or all-fake target.

    ``vanilla`` is BCE with logits (pix2pix), ``lsgan`` the mean of ``(logit - target)**2``
    (CycleGAN), targets 1 for real and 0 for fake. Written here rather than with MONAI's
    ``PatchAdversarialLoss``: its least-squares mode applies a LeakyReLU to the logits unless told
    not to, and its BCE mode (sigmoid + BCELoss) is refused under CUDA autocast. The loss is
    computed in float32 whatever the logits' dtype, so it is safe under bf16/fp16 autocast.

    Example:
        >>> GANLoss("vanilla")(torch.zeros(1, 1, 30, 30), target_is_real=True)  # log 2
        tensor(0.6931)
    """

    def __init__(self, mode: GANMode = "vanilla") -> None:
        super().__init__()
        if mode not in ("vanilla", "lsgan"):
            raise ValueError(f"GAN mode must be 'vanilla' or 'lsgan', got {mode!r}")
        self.mode = mode

    def forward(self, logits: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        """Scalar float32 loss for logits (N, 1, *patches)."""
        logits = logits.float()
        target = torch.full_like(logits, 1.0 if target_is_real else 0.0)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

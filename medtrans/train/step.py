"""What a recipe's training step needs from the engine: device, precision, backward-and-step, grad sync."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ContextManager, Iterable

import torch
import torch.distributed as dist
from torch import nn

from medtrans.precision import autocast


@dataclass
class StepContext:
    """Device and precision settings shared by every recipe step.

    Attributes:
        device: where networks and batches live.
        amp_dtype: autocast dtype (bf16 / fp16) or None for float32.
        channels_last: use the channels_last memory format for 2D batches.
        world_size: processes in a torchrun job; gradients are averaged across them.
    """

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    world_size: int = 1
    scaler: torch.amp.GradScaler = field(init=False)

    def __post_init__(self) -> None:
        # Loss scaling is needed only for fp16; bf16 has float32's exponent range.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

    def autocast(self) -> ContextManager:
        """Mixed-precision context for forward passes."""
        return autocast(self.device, self.amp_dtype)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """Move a batch (B, C, *S) to the device, channels_last for 2D when enabled."""
        memory_format = torch.channels_last if self.channels_last and images.ndim == 4 else torch.contiguous_format
        return images.to(self.device, non_blocking=True).contiguous(memory_format=memory_format)

    def backward_and_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                          networks: Iterable[nn.Module]) -> None:
        """Backpropagate ``loss``, average gradients across ranks, and step ``optimizer``.

        Gradients are averaged here, once per optimizer step, instead of through
        DistributedDataParallel: GAN steps call a network several times before one backward
        (CycleGAN) and toggle ``requires_grad`` between the D and G steps, which DDP's reducer
        does not support without static-graph restrictions. The arithmetic is DDP's (mean of
        per-rank gradients), with the initial weights broadcast from rank 0.
        """
        self.scaler.scale(loss).backward()
        if self.world_size > 1:
            average_gradients(networks, self.world_size)
        self.scaler.step(optimizer)
        self.scaler.update()


def average_gradients(networks: Iterable[nn.Module], world_size: int) -> None:
    """All-reduce (mean) the gradients of ``networks`` in one flat buffer."""
    grads = [p.grad for net in networks for p in net.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_weights(networks: Iterable[nn.Module]) -> None:
    """Give every rank rank 0's parameters and buffers."""
    for net in networks:
        for tensor in list(net.parameters()) + list(net.buffers()):
            dist.broadcast(tensor.data, src=0)


def set_requires_grad(networks: Iterable[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze networks (the discriminators during the generator step)."""
    for net in networks:
        net.requires_grad_(flag)


def linear_decay(total_steps: int, decay_start: float):
    """LR factor: 1 until ``decay_start * total_steps``, then linear down to 0 at ``total_steps``."""
    start = int(decay_start * total_steps)
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        return 1.0 - max(0, step - start) / span

    return factor


def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel (one launch for all parameters) on CPU and CUDA."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)

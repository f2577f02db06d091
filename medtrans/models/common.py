"""Layers picked by ``spatial_dims``, pad-and-crop for arbitrary input sizes, and weight init.

One implementation serves 2D and 3D: every network asks these helpers for its Conv / Norm / Pad
class instead of naming ``Conv2d`` or ``Conv3d``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv, Norm
from monai.networks.utils import normal_init
from torch import nn

NORM_KINDS = ("batch", "instance")


def check_spatial_dims(spatial_dims: int) -> None:
    """Raise ValueError unless ``spatial_dims`` is 2 or 3."""
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")


def check_norm(norm: str) -> None:
    """Raise ValueError unless ``norm`` is one of `NORM_KINDS`."""
    if norm not in NORM_KINDS:
        raise ValueError(f"norm must be one of {NORM_KINDS}, got {norm!r}")


def conv(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, *,
         stride: int = 1, padding: int = 0, bias: bool = True) -> nn.Module:
    """A ``Conv{2,3}d`` layer."""
    return Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size, stride=stride,
                                         padding=padding, bias=bias)


def conv_transpose(spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int, *,
                   stride: int, padding: int, output_padding: int = 0, bias: bool = True) -> nn.Module:
    """A ``ConvTranspose{2,3}d`` layer."""
    return Conv[Conv.CONVTRANS, spatial_dims](in_channels, out_channels, kernel_size, stride=stride,
                                              padding=padding, output_padding=output_padding, bias=bias)


def norm_layer(norm: str, spatial_dims: int, channels: int) -> nn.Module:
    """Batch norm (affine), or instance norm without affine parameters as in the reference.

    Instance norm also keeps no running statistics (the reference's current default): with them,
    eval mode would normalise by training-set averages instead of each image's own statistics.
    """
    check_norm(norm)
    if norm == "batch":
        return Norm[Norm.BATCH, spatial_dims](channels)
    return Norm[Norm.INSTANCE, spatial_dims](channels, affine=False, track_running_stats=False)


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by ``norm`` carries a bias: not before batch norm, whose shift replaces it."""
    return norm == "instance"


def reflection_pad(spatial_dims: int, size: int) -> nn.Module:
    """A ``ReflectionPad{2,3}d`` of ``size`` voxels on every side (MONAI has no reflection factory)."""
    return (nn.ReflectionPad2d, nn.ReflectionPad3d)[spatial_dims - 2](size)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Replicate-pad the spatial dims of ``x`` (N, C, *spatial) up to a multiple of ``multiple``.

    The padding is split evenly before and after so the image stays centred. Replicate rather than
    reflect because reflection needs the pad to be smaller than the side, which a deep U-Net on a
    small image breaks.

    Returns:
        The padded tensor and the index that crops a same-sized output back to ``x``'s extent.
    """
    spatial = x.shape[2:]
    totals = [math.ceil(s / multiple) * multiple - s for s in spatial]
    before = [t // 2 for t in totals]
    crop = (slice(None), slice(None)) + tuple(slice(b, b + s) for b, s in zip(before, spatial))
    if not any(totals):
        return x, crop
    # F.pad lists (before, after) pairs starting from the last dimension.
    pads = [p for t, b in zip(reversed(totals), reversed(before)) for p in (b, t - b)]
    return F.pad(x, pads, mode="replicate"), crop


def init_weights(net: nn.Module) -> None:
    """Reference ``init_weights(net, 'normal', 0.02)``: conv N(0, 0.02), batch-norm weight N(1, 0.02), biases 0."""
    net.apply(normal_init)


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters (buffers such as running statistics excluded)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)

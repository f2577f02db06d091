"""Synthetic-CT metrics inside a body mask, with the SynthRAD2023 challenge's definitions.

Every metric is computed in float64 torch on the chosen device (CPU or GPU give the same numbers);
docs/metrics.md writes out the formulas. Arrays are (X, Y, Z) in HU; the mask is boolean.

Example:
    >>> import numpy as np
    >>> ct = np.full((8, 8, 8), 40.0); ct[2:5] = 700.0
    >>> m = volume_metrics(ct + 10.0, ct, np.ones(ct.shape, bool))
    >>> round(m["mae"], 6), round(m["bone_dice"], 6)
    (10.0, 1.0)
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
from monai.metrics import compute_dice
from monai.metrics.regression import compute_mean_error_metrics

from medtrans.device import resolve_device

HU_RANGE = (-1024.0, 3000.0)
DATA_RANGE_HU = HU_RANGE[1] - HU_RANGE[0]
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
AIR_MAX_HU = -200.0
BONE_MIN_HU = 250.0
METRIC_NAMES = ("mae", "psnr", "ssim", "mae_air", "mae_soft", "mae_bone", "bone_dice")

# SSIM runs over slabs of about this many voxels (8 MB per float64 map): small enough that the
# allocator reuses its buffers, as fresh multi-100 MB allocations cost more in page faults than the
# arithmetic itself on a CPU (measured: 256 x 256 x 180 takes 2x longer in one piece).
_SLAB_VOXELS = 2**20

ArrayLike = Union[np.ndarray, torch.Tensor]


_NUMPY_DTYPES = {torch.float64: np.float64, torch.bool: np.bool_}


def _as_tensor(array: ArrayLike, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``array`` as a torch tensor of ``dtype`` (float64 or bool: nonzero is True) on ``device``."""
    if isinstance(array, np.ndarray):
        # One numpy pass to a contiguous, native-order array of the final type: torch refuses
        # negative strides and big-endian data, and a second conversion would cost another pass.
        array = np.ascontiguousarray(array, dtype=_NUMPY_DTYPES[dtype])
    return torch.as_tensor(array).to(device=device, dtype=dtype)


def mae_hu(pred_hu: torch.Tensor, target_hu: torch.Tensor) -> float:
    """Mean absolute error in HU of two 1D tensors of voxel values (no clipping); NaN when empty."""
    if pred_hu.numel() == 0:
        return math.nan
    return compute_mean_error_metrics(pred_hu[None], target_hu[None], func=torch.abs).item()


def psnr_db(pred_hu: torch.Tensor, target_hu: torch.Tensor) -> float:
    """PSNR in dB of two 1D tensors of voxel values, clipped to `HU_RANGE`, peak `DATA_RANGE_HU`."""
    low, high = HU_RANGE
    mse = compute_mean_error_metrics(pred_hu.clamp(low, high)[None], target_hu.clamp(low, high)[None],
                                     func=torch.square)
    return (10.0 * torch.log10(DATA_RANGE_HU**2 / mse)).item()


def tissue_mae_hu(pred_hu: torch.Tensor, target_hu: torch.Tensor) -> dict[str, float]:
    """MAE in HU per tissue class of the real CT (1D tensors of mask voxels); NaN for an empty class.

    Classes: air below `AIR_MAX_HU`, soft tissue from `AIR_MAX_HU` to `BONE_MIN_HU` (both
    included), bone above `BONE_MIN_HU`.
    """
    classes = {
        "mae_air": target_hu < AIR_MAX_HU,
        "mae_soft": (target_hu >= AIR_MAX_HU) & (target_hu <= BONE_MIN_HU),
        "mae_bone": target_hu > BONE_MIN_HU,
    }
    return {name: mae_hu(pred_hu[selected], target_hu[selected]) for name, selected in classes.items()}


def bone_dice(pred_hu: torch.Tensor, target_hu: torch.Tensor) -> float:
    """Dice of the bone masks (HU above `BONE_MIN_HU`) of two 1D tensors; NaN when the real CT has no bone."""
    pred_bone = (pred_hu > BONE_MIN_HU)[None, None]
    target_bone = (target_hu > BONE_MIN_HU)[None, None]
    return compute_dice(pred_bone, target_bone, include_background=True, ignore_empty=True).item()


def _box_mean(volume: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over every ``window``^3 box lying fully inside ``volume`` (X, Y, Z).

    Three 1D passes (the uniform window is separable), each adding ``window`` shifted views:
    3 * window additions per voxel instead of window^3 (MONAI's dense convolution), which is what
    keeps the CPU faster than scikit-image. Output (X-w+1, Y-w+1, Z-w+1).
    """
    for dim in range(3):
        length = volume.shape[dim] - window + 1
        total = volume.narrow(dim, 0, length).clone()
        for offset in range(1, window):
            total += volume.narrow(dim, offset, length)
        volume = total
    return volume / window**3


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM map of two float64 volumes (X, Y, Z) already shifted to [0, `DATA_RANGE_HU`].

    scikit-image's `structural_similarity` defaults: uniform 7^3 window, K1 0.01, K2 0.03, sample
    covariance (N / (N - 1)). Only voxels whose window lies inside the volume are returned, so the
    map is (X-6, Y-6, Z-6): scikit-image's full map cropped by 3 voxels on every side.
    MONAI's `compute_ssim_and_cs` gives the same map with ``kernel_type="uniform"`` and
    ``k2=0.03 * sqrt((N - 1) / N)``, but only in float32 and with a dense 7^3 convolution (about 8x
    slower on a CPU), hence this float64 separable version.
    """
    mu_x, mu_y, mu_xx, mu_yy, mu_xy = (_box_mean(v, SSIM_WINDOW) for v in (x, y, x * x, y * y, x * y))
    n = SSIM_WINDOW**3
    cov_norm = n / (n - 1)
    mean_xy = mu_x * mu_y
    mean_sq = mu_x * mu_x + mu_y * mu_y
    var_sum = cov_norm * (mu_xx + mu_yy - mean_sq)
    cov_xy = cov_norm * (mu_xy - mean_xy)
    c1 = (SSIM_K1 * DATA_RANGE_HU) ** 2
    c2 = (SSIM_K2 * DATA_RANGE_HU) ** 2
    return ((2 * mean_xy + c1) * (2 * cov_xy + c2)) / ((mean_sq + c1) * (var_sum + c2))


def _ssim_input(hu: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Clip to `HU_RANGE`, set voxels outside ``mask`` to the lower bound, shift to start at 0."""
    low, high = HU_RANGE
    return hu.clamp(low, high).masked_fill_(~mask, low).sub_(low)


def masked_ssim(pred_hu: torch.Tensor, target_hu: torch.Tensor, mask: torch.Tensor) -> float:
    """SynthRAD2023 SSIM: `ssim_map` of the masked, clipped volumes averaged over the mask without its
    3-voxel border. Inputs (X, Y, Z) float64 HU and bool, on one device; computed slab by slab along X.
    """
    border = SSIM_WINDOW // 2
    inner_mask = mask[border:-border, border:-border, border:-border]
    if not inner_mask.any():
        return math.nan
    planes = max(1, _SLAB_VOXELS // (mask.shape[1] * mask.shape[2]))
    total = torch.zeros((), dtype=torch.float64, device=mask.device)
    for start in range(0, inner_mask.shape[0], planes):
        stop = min(start + planes, inner_mask.shape[0])
        rows = slice(start, stop + 2 * border)
        smap = ssim_map(_ssim_input(pred_hu[rows], mask[rows]), _ssim_input(target_hu[rows], mask[rows]))
        total += smap[inner_mask[start:stop]].sum()
    return (total / inner_mask.sum()).item()


def mask_bounding_box(mask: torch.Tensor, margin: int) -> tuple[slice, slice, slice]:
    """Slices of the bounding box of ``mask`` (X, Y, Z), grown by ``margin`` voxels within the volume."""
    box = []
    for dim in range(3):
        present = mask.any(dim=[d for d in range(3) if d != dim]).nonzero()
        first, last = int(present[0]), int(present[-1])
        box.append(slice(max(first - margin, 0), min(last + 1 + margin, mask.shape[dim])))
    return tuple(box)


def volume_metrics(pred_hu: ArrayLike, target_hu: ArrayLike, mask: ArrayLike,
                   device: str | torch.device = "cpu") -> dict[str, float]:
    """All metrics of a synthetic CT against the real CT inside ``mask``, keyed by `METRIC_NAMES`.

    Args:
        pred_hu: synthetic CT in HU, (X, Y, Z) numpy array or torch tensor.
        target_hu: real CT in HU, same shape.
        mask: body mask, same shape, bool (any nonzero value counts as inside).
        device: where to compute: "cpu", "cuda", "cuda:N" or "auto".

    Returns:
        mae (HU), psnr (dB), ssim, mae_air / mae_soft / mae_bone (HU, NaN for a class the real CT
        does not have inside the mask) and bone_dice (NaN when the real CT has no bone).

    Raises:
        ValueError: shapes differ, are not 3D or are under 7 voxels along an axis; the mask is empty.
    """
    if not (tuple(pred_hu.shape) == tuple(target_hu.shape) == tuple(mask.shape)) or len(mask.shape) != 3:
        raise ValueError(f"pred, target and mask must share one 3D shape, got {tuple(pred_hu.shape)}, "
                         f"{tuple(target_hu.shape)} and {tuple(mask.shape)}")
    if min(mask.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW} voxels along each axis, got shape {tuple(mask.shape)}")
    device = resolve_device(device)
    inside = _as_tensor(mask, device, torch.bool)
    if not inside.any():
        raise ValueError("the mask has no voxels")
    # Only the mask's bounding box plus the SSIM window's reach can change any metric, and the
    # air around a body is often half of a scan: crop before converting to float64.
    box = mask_bounding_box(inside, SSIM_WINDOW // 2)
    inside = inside[box]
    pred = _as_tensor(pred_hu[box], device, torch.float64)
    target = _as_tensor(target_hu[box], device, torch.float64)
    pred_in, target_in = pred[inside], target[inside]
    return {
        "mae": mae_hu(pred_in, target_in),
        "psnr": psnr_db(pred_in, target_in),
        "ssim": masked_ssim(pred, target, inside),
        **tissue_mae_hu(pred_in, target_in),
        "bone_dice": bone_dice(pred_in, target_in),
    }

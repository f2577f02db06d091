"""Training augmentation with MONAI: random flips, small affine, MR intensity jitter.

Spatial transforms act on every listed key with one random draw, so a pair stays aligned.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandFlipd,
    RandScaleIntensityd,
)

from medtrans.data.views import PatchView, SliceView

Augment = Callable[[dict[str, torch.Tensor], int], dict[str, torch.Tensor]]


def left_right_axis(view: SliceView | PatchView) -> int | None:
    """Spatial axis of a sample (without channel) that runs left-right, or None for sagittal slices."""
    if isinstance(view, PatchView):
        return 0
    return None if view.axis == 0 else 0


def build_augment(view: SliceView | PatchView, spatial_keys: list[str], intensity_keys: list[str]) -> Augment:
    """An augmentation applied as ``augment(sample, seed)``; deterministic for a given seed.

    Args:
        view: where samples come from (sets the dimensionality and the left-right axis).
        spatial_keys: images moved together (both images of a pair).
        intensity_keys: images whose intensities are jittered (MR only: CT HU must stay exact).
    """
    rotate = math.radians(5.0)
    rotate_range = (rotate,) if view.spatial_dims == 2 else (rotate, rotate, rotate)
    transforms = []
    lr_axis = left_right_axis(view)
    if lr_axis is not None:
        transforms.append(RandFlipd(spatial_keys, prob=0.5, spatial_axis=lr_axis))
    # "border" padding: the rim of a body-cropped volume is air, so replicating it adds air, where
    # MONAI's default "reflection" would mirror anatomy into the corners.
    transforms.append(RandAffined(spatial_keys, prob=0.3, rotate_range=rotate_range, scale_range=0.05,
                                  mode="bilinear", padding_mode="border"))
    if intensity_keys:
        transforms.append(RandAdjustContrastd(intensity_keys, prob=0.3, gamma=(0.8, 1.25)))
        transforms.append(RandScaleIntensityd(intensity_keys, factors=0.05, prob=0.3))
    pipeline = Compose(transforms)

    def augment(sample: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
        pipeline.set_random_state(seed=seed)
        out = pipeline(dict(sample))
        return {k: torch.as_tensor(v).as_subclass(torch.Tensor).contiguous() for k, v in out.items()}

    return augment

"""Run a generator over a whole normalized volume: slices in batches (2D/2.5D) or a sliding window (3D).

Training validation and inference both call `translate_volume`, so validation measures exactly
what users will get.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.inferers import SlidingWindowInferer
from torch import nn

from medtrans.precision import autocast


def slice_batches(volume: torch.Tensor, axis: int, context: int, batch_size: int):
    """Yield (first slice index, (B, 2*context+1, H, W) stacks) along ``axis`` of an (X, Y, Z) tensor."""
    moved = volume.movedim(axis, 0)
    n = moved.shape[0]
    for first in range(0, n, batch_size):
        centres = torch.arange(first, min(first + batch_size, n))
        offsets = torch.arange(-context, context + 1)
        indices = (centres[:, None] + offsets[None, :]).clamp(0, n - 1)
        yield first, moved[indices]


@torch.inference_mode()
def translate_volume(
    generator: nn.Module,
    volume: np.ndarray,
    spatial_dims: int,
    device: torch.device,
    axis: int = 2,
    context: int = 0,
    patch_size: tuple[int, int, int] = (64, 64, 64),
    batch_size: int = 16,
    overlap: float = 0.5,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> np.ndarray:
    """Translate a normalized (X, Y, Z) volume with ``generator``; returns float32 (X, Y, Z) in [-1, 1].

    Args:
        generator: maps (B, C_in, *S) to (B, C_out, *S); for 2.5D with C_out > 1 the centre channel is kept.
        spatial_dims: 2 for slice-wise (2D and 2.5D), 3 for a gaussian-blended sliding window.
        axis: slice axis for 2D (2 = axial in RAS arrays).
        context: neighbouring slices each side fed as channels (2.5D).
        patch_size: sliding-window size for 3D (voxels).
        batch_size: slices per forward (2D) or windows per forward (3D); bounds peak memory.
        overlap: window overlap fraction (3D).
    """
    generator.eval()
    memory_format = torch.channels_last if channels_last and spatial_dims == 2 else torch.contiguous_format
    source = torch.from_numpy(np.array(volume, dtype=np.float32))
    if spatial_dims == 3:
        inferer = SlidingWindowInferer(roi_size=patch_size, sw_batch_size=batch_size, overlap=overlap,
                                       mode="gaussian", padding_mode="replicate", sw_device=device, device="cpu")
        with autocast(device, amp_dtype):
            result = inferer(source[None, None], lambda x: generator(x).float())
        return result[0, result.shape[1] // 2].numpy()
    moved_shape = source.movedim(axis, 0).shape
    output = torch.empty(moved_shape, dtype=torch.float32)
    for first, stack in slice_batches(source, axis, context, batch_size):
        batch = stack.to(device).contiguous(memory_format=memory_format)
        with autocast(device, amp_dtype):
            predicted = generator(batch)
        output[first:first + len(stack)] = predicted[:, predicted.shape[1] // 2].float().cpu()
    return output.movedim(0, axis).numpy()

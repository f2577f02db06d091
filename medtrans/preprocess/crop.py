"""Crop to the body's bounding box with a margin and pad to a multiple of the network stride.

Cropping and padding are one operation: extracting the box ``[start, start + size)`` of voxel
indices from the volume, where the box may reach outside the volume (those voxels get a fill
value). The box is stored as plain data, so the operation is replayed on new volumes
(`apply_crop`) and undone (`uncrop`) exactly.

Example:
    >>> import numpy as np
    >>> mask = np.zeros((40, 40, 10), bool); mask[10:20, 12:30, 2:8] = True
    >>> box = crop_box(mask, (1.0, 1.0, 1.0), margin_mm=2.0, pad_multiple=16)
    >>> box.start, box.size
    ((7, 5, -3), (16, 32, 16))
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medtrans.io import Volume


@dataclass(frozen=True)
class CropBox:
    """A box of voxel indices ``[start, start + size)`` in a volume of shape ``source_shape``."""

    start: tuple[int, int, int]
    size: tuple[int, int, int]
    source_shape: tuple[int, int, int]

    def to_dict(self) -> dict:
        """Plain data for the manifest."""
        return {"start": list(self.start), "size": list(self.size), "source_shape": list(self.source_shape)}

    @classmethod
    def from_dict(cls, values: dict) -> "CropBox":
        """Rebuild a box stored with `to_dict`."""
        return cls(tuple(values["start"]), tuple(values["size"]), tuple(values["source_shape"]))

    def overlap(self) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
        """Slices of the part inside both the box and the source: (in the source, in the box)."""
        source, box = [], []
        for start, size, n in zip(self.start, self.size, self.source_shape):
            low, high = max(start, 0), min(start + size, n)
            high = max(high, low)
            source.append(slice(low, high))
            box.append(slice(low - start, high - start))
        return tuple(source), tuple(box)


def round_up(n: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` that is >= ``n`` (and >= ``multiple``)."""
    return max(multiple, -(-n // multiple) * multiple)


def crop_box(mask: np.ndarray, spacing_mm: Sequence[float], margin_mm: float, pad_multiple: int) -> CropBox:
    """The box around ``mask``'s True voxels plus ``margin_mm``, grown to a multiple of ``pad_multiple``.

    The box is first clipped to the volume (the margin adds no empty voxels), then grown evenly on
    both sides to the next multiple, which may reach outside the volume. An empty mask keeps the
    whole volume.

    Args:
        mask: boolean body mask, shape (X, Y, Z).
        spacing_mm: voxel size (mm), to turn the margin into voxels.
        margin_mm: margin around the body (mm).
        pad_multiple: every side of the box becomes a multiple of this (1 = no padding).
    """
    shape = mask.shape
    if mask.any():
        margin = [int(np.ceil(margin_mm / s)) for s in spacing_mm]
        nonzero = np.nonzero(mask)
        low = [max(0, int(idx.min()) - m) for idx, m in zip(nonzero, margin)]
        high = [min(n, int(idx.max()) + 1 + m) for idx, n, m in zip(nonzero, shape, margin)]
    else:
        low, high = [0, 0, 0], list(shape)
    start, size = [], []
    for lo, hi in zip(low, high):
        padded = round_up(hi - lo, pad_multiple)
        start.append(lo - (padded - (hi - lo)) // 2)
        size.append(padded)
    return CropBox(tuple(start), tuple(size), tuple(int(n) for n in shape))


def placed(part: np.ndarray, shape: tuple[int, ...], where: tuple[slice, ...], fill: float) -> np.ndarray:
    """An array of ``shape`` filled with ``fill``, ``part`` at the slices ``where`` (``part``'s dtype)."""
    out = np.full(shape, fill, dtype=part.dtype)
    out[where] = part
    return out


def crop_array(array: np.ndarray, box: CropBox, fill: float) -> np.ndarray:
    """The ``box`` region of ``array`` (shape ``box.size``), ``fill`` where it leaves the array."""
    if array.shape != box.source_shape:
        raise ValueError(f"array shape {array.shape} does not match the box's source shape {box.source_shape}")
    source, inside = box.overlap()
    return placed(array[source], box.size, inside, fill)


def apply_crop(vol: Volume, box: CropBox, fill: float) -> Volume:
    """Crop/pad ``vol`` to ``box``; the origin moves so every voxel keeps its world position."""
    origin = vol.index_to_world(np.asarray(box.start, dtype=np.float64))
    return dataclasses.replace(vol, array=crop_array(vol.array, box, fill), origin_mm=tuple(origin))


def uncrop_array(array: np.ndarray, box: CropBox, fill: float) -> np.ndarray:
    """Put a box-shaped ``array`` back into an array of the source shape, ``fill`` elsewhere."""
    if array.shape != box.size:
        raise ValueError(f"array shape {array.shape} does not match the box size {box.size}")
    source, inside = box.overlap()
    return placed(array[inside], box.source_shape, source, fill)


def uncrop(vol: Volume, box: CropBox, fill: float) -> Volume:
    """Undo `apply_crop`: the volume on the grid it was cropped from, ``fill`` outside the box."""
    origin = vol.index_to_world(-np.asarray(box.start, dtype=np.float64))
    return dataclasses.replace(vol, array=uncrop_array(vol.array, box, fill), origin_mm=tuple(origin))

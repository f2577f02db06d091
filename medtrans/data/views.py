"""Where samples come from in a volume: 2D slices, 2.5D slice stacks or 3D patches.

All arrays are (X, Y, Z) in RAS-like canonical orientation, so axial slices run along Z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medtrans.config import DatasetConfig

AXIS_INDEX = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclass(frozen=True)
class SliceView:
    """Slices along ``axis``; ``context`` neighbouring slices each side become input channels (2.5D)."""

    axis: int
    context: int = 0
    min_body_fraction: float = 0.05
    plane_shape: tuple[int, int] | None = None

    @property
    def spatial_dims(self) -> int:
        return 2

    def locations(self, mask: np.ndarray) -> np.ndarray:
        """Indices of slices whose body fraction is at least ``min_body_fraction``."""
        other = tuple(a for a in range(3) if a != self.axis)
        fraction = mask.mean(axis=other)
        return np.flatnonzero(fraction >= self.min_body_fraction)

    def plane_of(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(H, W) of the slices of a volume of ``shape``."""
        return tuple(n for a, n in enumerate(shape) if a != self.axis)

    def extract(self, array: np.ndarray, location: int, with_context: bool) -> np.ndarray:
        """(C, H, W) float32: the slice, or 2*context+1 slices centred on it (clamped at the ends).

        With ``plane_shape`` set, slices are padded evenly with the background value (-1) to that
        size, so subjects cropped to different sizes batch together.
        """
        half = self.context if with_context else 0
        n = array.shape[self.axis]
        indices = np.clip(np.arange(location - half, location + half + 1), 0, n - 1)
        stack = np.moveaxis(np.take(array, indices, axis=self.axis), self.axis, 0).astype(np.float32)
        if self.plane_shape is not None and stack.shape[1:] != self.plane_shape:
            extra = [max(0, t - n) for t, n in zip(self.plane_shape, stack.shape[1:])]
            stack = np.pad(stack, [(0, 0)] + [(e // 2, e - e // 2) for e in extra], constant_values=-1.0)
        return np.ascontiguousarray(stack)

    def random_location(self, candidates: np.ndarray, rng: np.random.Generator) -> int:
        """A slice index drawn from ``candidates``."""
        return int(candidates[rng.integers(len(candidates))])


@dataclass(frozen=True)
class PatchView:
    """3D patches of ``patch_size`` voxels whose centre is drawn from the body with probability ``body_bias``."""

    patch_size: tuple[int, int, int]
    body_bias: float = 0.9

    @property
    def spatial_dims(self) -> int:
        return 3

    def locations(self, mask: np.ndarray) -> np.ndarray:
        """(N, 3) voxel coordinates inside the body (candidate patch centres)."""
        return np.argwhere(mask)

    def start_for_centre(self, centre: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Patch corner that centres the patch on ``centre`` while staying inside the volume."""
        size = np.asarray(self.patch_size)
        return np.clip(np.asarray(centre) - size // 2, 0, np.asarray(shape) - size)

    def random_location(self, candidates: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """A patch corner: body-centred with probability ``body_bias``, else uniform."""
        if len(candidates) and rng.random() < self.body_bias:
            centre = candidates[rng.integers(len(candidates))]
        else:
            centre = np.array([rng.integers(n) for n in shape])
        return self.start_for_centre(centre, shape)

    def extract(self, array: np.ndarray, start: np.ndarray, with_context: bool = False) -> np.ndarray:
        """(1, px, py, pz) float32 patch with corner ``start``."""
        region = tuple(slice(int(s), int(s) + p) for s, p in zip(start, self.patch_size))
        return np.ascontiguousarray(array[region], dtype=np.float32)[None]

    def grid_starts(self, shape: tuple[int, ...], overlap: float = 0.0) -> list[tuple[int, int, int]]:
        """Deterministic patch corners covering the whole volume (validation), last patch flush with the end."""
        axes = []
        for n, p in zip(shape, self.patch_size):
            step = max(1, int(p * (1 - overlap)))
            starts = list(range(0, max(n - p, 0) + 1, step))
            if starts[-1] != max(n - p, 0):
                starts.append(n - p)
            axes.append(starts)
        return [(a, b, c) for a in axes[0] for b in axes[1] for c in axes[2]]


def view_from_config(cfg: DatasetConfig) -> SliceView | PatchView:
    """The sample view ``dataset.kind`` asks for."""
    if cfg.kind == "3d":
        return PatchView(tuple(cfg.patch_size))
    context = (cfg.context_slices - 1) // 2 if cfg.kind == "2.5d" else 0
    return SliceView(AXIS_INDEX[cfg.axis], context, cfg.min_body_fraction)


def pad_to_patch(array: np.ndarray, patch_size: tuple[int, int, int], value: float) -> np.ndarray:
    """Pad (end side) so every axis is at least the patch size; no copy when already big enough."""
    pads = [(0, max(0, p - n)) for n, p in zip(array.shape, patch_size)]
    if not any(after for _, after in pads):
        return array
    return np.pad(array, pads, constant_values=value)

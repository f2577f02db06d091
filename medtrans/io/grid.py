"""`Grid`: the geometry of a volume without its voxels (shape, spacing, origin, direction; LPS mm).

Resampling targets, canonical grids and the sample phantoms' scanner grids are all `Grid`s; a
`Volume` is a grid plus an array (`Grid.of`, `Grid.volume`).

Example:
    >>> import numpy as np
    >>> grid = Grid.centred((2.0, 2.0, 3.0), (20.0, 20.0, 30.0), np.zeros(3), np.eye(3))
    >>> grid.shape, grid.origin_mm, grid.centre_mm.tolist()
    ((10, 10, 10), (-9.0, -9.0, -13.5), [0.0, 0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import SimpleITK as sitk

from medtrans.io.volume import Volume, affine_lps


@dataclass(frozen=True)
class Grid:
    """A voxel grid in LPS world mm: shape (X, Y, Z), spacing, origin of voxel 0 and axis directions (3, 3)."""

    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: np.ndarray

    @classmethod
    def of(cls, vol: Volume) -> "Grid":
        """The grid ``vol`` lives on."""
        return cls(vol.shape, vol.spacing_mm, vol.origin_mm, vol.direction)

    @classmethod
    def centred(cls, spacing_mm: tuple[float, ...], fov_mm: tuple[float, ...], centre_mm: np.ndarray,
                direction: np.ndarray) -> "Grid":
        """The grid of ``fov_mm`` at ``spacing_mm`` whose centre is the LPS point ``centre_mm``."""
        shape = tuple(int(round(f / s)) for f, s in zip(fov_mm, spacing_mm))
        half_extent = direction @ (np.asarray(spacing_mm) * (np.asarray(shape) - 1) / 2)
        origin = np.asarray(centre_mm, dtype=np.float64) - half_extent
        return cls(shape, tuple(float(s) for s in spacing_mm), tuple(float(o) for o in origin), direction)

    @property
    def affine(self) -> np.ndarray:
        """(4, 4) voxel index to LPS world (mm) matrix."""
        return affine_lps(self.direction, self.spacing_mm, self.origin_mm)

    @property
    def centre_mm(self) -> np.ndarray:
        """LPS position (mm) of the grid's centre."""
        return (self.affine @ np.append((np.asarray(self.shape) - 1) / 2, 1.0))[:3]

    def volume(self, array: np.ndarray, **meta: Any) -> Volume:
        """A `Volume` holding ``array`` (shape (X, Y, Z)) on this grid."""
        return Volume(array, self.spacing_mm, self.origin_mm, self.direction, dict(meta))

    def reference_image(self) -> sitk.Image:
        """An empty SimpleITK image on this grid, to resample onto."""
        image = sitk.Image([int(n) for n in self.shape], sitk.sitkUInt8)
        image.SetSpacing([float(s) for s in self.spacing_mm])
        image.SetOrigin([float(o) for o in self.origin_mm])
        image.SetDirection([float(x) for x in np.asarray(self.direction).ravel()])
        return image

"""`Volume`: a 3D array with its full geometry (spacing, origin, direction) in LPS world mm.

Convention (the one ITK, SimpleITK and DICOM use): world coordinates are LPS, and voxel index
``(i, j, k)`` maps to ``origin_mm + direction @ (spacing_mm * (i, j, k))``. The array is stored in
index order ``(X, Y, Z)`` = ``(i, j, k)``, the same order as nibabel and MONAI (not SimpleITK's
``(Z, Y, X)`` numpy view). NIfTI's RAS world is handled on read and write (x and y negated).

Example:
    >>> import numpy as np
    >>> vol = Volume(np.zeros((4, 5, 6), np.float32), (1.0, 1.0, 2.5), (0.0, 0.0, 0.0), np.eye(3))
    >>> vol.orientation
    'LPS'
    >>> vol.index_to_world((1, 1, 1)).tolist()
    [1.0, 1.0, 2.5]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def sitk_compatible(array: np.ndarray) -> np.ndarray:
    """``array`` in a dtype SimpleITK accepts: native byte order, bool as uint8, float16 as float32."""
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    if array.dtype == np.float16:
        return array.astype(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def affine_lps(direction: np.ndarray, spacing_mm: tuple[float, ...], origin_mm: tuple[float, ...]) -> np.ndarray:
    """(4, 4) voxel-index to LPS-world (mm) matrix of a grid."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(direction) @ np.diag(spacing_mm)
    affine[:3, 3] = origin_mm
    return affine


@dataclass(frozen=True, eq=False)
class Volume:
    """A scan: ``array`` of shape (X, Y, Z) plus geometry in LPS millimetres.

    Attributes:
        array: voxel values, shape (X, Y, Z); HU for CT, arbitrary units for MR.
        spacing_mm: voxel size along i, j, k in mm.
        origin_mm: world (LPS) position of voxel (0, 0, 0) in mm.
        direction: (3, 3) matrix whose columns are the unit vectors of the i, j, k axes in LPS.
        meta: free-form facts about the source (modality, series UID, path); never geometry.
    """

    array: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    direction: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spacing_mm", tuple(float(s) for s in self.spacing_mm))
        object.__setattr__(self, "origin_mm", tuple(float(o) for o in self.origin_mm))
        object.__setattr__(self, "direction", np.asarray(self.direction, dtype=np.float64).reshape(3, 3))
        if self.array.ndim != 3:
            raise ValueError(f"Volume needs a 3D array, got shape {self.array.shape}")
        if len(self.spacing_mm) != 3 or len(self.origin_mm) != 3:
            raise ValueError(f"spacing_mm and origin_mm need 3 values, got {self.spacing_mm} and {self.origin_mm}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel counts along i, j, k."""
        return tuple(int(n) for n in self.array.shape)

    @property
    def affine_lps(self) -> np.ndarray:
        """(4, 4) voxel-index to LPS-world (mm) matrix."""
        return affine_lps(self.direction, self.spacing_mm, self.origin_mm)

    @property
    def affine_ras(self) -> np.ndarray:
        """(4, 4) voxel-index to RAS-world (mm) matrix, as nibabel and NIfTI use."""
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        return flip @ self.affine_lps

    @property
    def orientation(self) -> str:
        """Three-letter code of where the i, j, k axes point (e.g. 'LPS', 'RAS'), nibabel's convention."""
        return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
            [float(x) for x in self.direction.ravel()]
        )

    def index_to_world(self, ijk: Any) -> np.ndarray:
        """LPS position (mm) of continuous voxel index/indices ``ijk`` of shape (3,) or (N, 3)."""
        ijk = np.asarray(ijk, dtype=np.float64)
        return ijk @ (self.direction @ np.diag(self.spacing_mm)).T + np.asarray(self.origin_mm)

    def world_to_index(self, xyz: Any) -> np.ndarray:
        """Continuous voxel index of LPS position(s) ``xyz`` of shape (3,) or (N, 3)."""
        xyz = np.asarray(xyz, dtype=np.float64) - np.asarray(self.origin_mm)
        return xyz @ np.linalg.inv(self.direction @ np.diag(self.spacing_mm)).T

    def with_array(self, array: np.ndarray, **meta: Any) -> "Volume":
        """Same geometry, new voxel values (shape must match); ``meta`` entries are added."""
        if array.shape != self.array.shape:
            raise ValueError(f"array shape {array.shape} does not match volume shape {self.array.shape}")
        return dataclasses.replace(self, array=array, meta={**self.meta, **meta})

    def same_grid(self, other: "Volume", tol: float = 1e-5) -> bool:
        """True when both volumes have the same shape, spacing, origin and direction (within tol)."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing_mm, other.spacing_mm, atol=tol)
            and np.allclose(self.origin_mm, other.origin_mm, atol=tol)
            and np.allclose(self.direction, other.direction, atol=tol)
        )

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image with the same voxels and geometry (bool becomes uint8, float16 float32)."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(sitk_compatible(self.array).transpose(2, 1, 0)))
        image.SetSpacing(self.spacing_mm)
        image.SetOrigin(self.origin_mm)
        image.SetDirection([float(x) for x in self.direction.ravel()])
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image, meta: dict[str, Any] | None = None) -> "Volume":
        """Wrap a 3D SimpleITK image (the array is copied into (X, Y, Z) order)."""
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(
                f"expected a 3D single-channel image, got {image.GetDimension()}D with "
                f"{image.GetNumberOfComponentsPerPixel()} component(s)"
            )
        array = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
        return cls(array, image.GetSpacing(), image.GetOrigin(),
                   np.array(image.GetDirection()).reshape(3, 3), dict(meta or {}))

    def describe(self) -> dict[str, Any]:
        """Plain facts for `medtrans info` and manifests."""
        finite = self.array[np.isfinite(self.array)] if self.array.dtype.kind == "f" else self.array
        return {
            "shape": list(self.shape),
            "spacing_mm": [round(s, 6) for s in self.spacing_mm],
            "origin_mm": [round(o, 4) for o in self.origin_mm],
            "orientation": self.orientation,
            "direction": [[round(float(x), 6) + 0.0 for x in row] for row in self.direction],
            "dtype": str(self.array.dtype),
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            **{k: v for k, v in self.meta.items() if k in ("modality", "series_uid", "series_description", "n_files")},
        }

"""Reorient to a canonical axis-aligned orientation and resample to a target spacing.

The canonical grid of a volume has the configured orientation (e.g. 'RAS': the i axis points to
the patient's right, j anterior, k superior; nibabel's naming), the configured spacing, and
covers the same world box as the input: the bounding box of the input's voxel edges, in the new
axes, centred. Intensities use linear or cubic B-spline interpolation and are clipped to the
input's value range (B-spline rings), with CT never below -1024 HU; labels use nearest neighbour
and keep their values and dtype.

Example:
    >>> import numpy as np
    >>> from medtrans.io import Grid, Volume
    >>> ct = Volume(np.full((10, 10, 4), -1000, np.int16), (1.0, 1.0, 5.0), (0, 0, 0), np.eye(3))
    >>> out = reorient_and_resample(ct, "RAS", (2.0, 2.0, 2.0), "linear", "ct")
    >>> out.orientation, out.shape, out.spacing_mm
    ('RAS', (5, 5, 10), (2.0, 2.0, 2.0))
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from medtrans.errors import ConfigError
from medtrans.io import Grid, Volume

Interpolation = Literal["linear", "bspline", "nearest"]
VolumeKind = Literal["mr", "ct", "label"]

# Air in HU; CT values below it are scanner padding, and interpolation must not invent them.
CT_AIR_HU = -1024.0

_SITK_INTERPOLATORS = {
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "nearest": sitk.sitkNearestNeighbor,
}
_AXIS_LETTERS = ({"R", "L"}, {"A", "P"}, {"S", "I"})


def orientation_direction(orientation: str) -> np.ndarray:
    """(3, 3) direction matrix (columns = i, j, k axes in LPS) of a code such as 'RAS' or 'LPS'.

    Raises:
        ConfigError: when the code does not name each of R/L, A/P, S/I exactly once.
    """
    code = orientation.upper()
    if len(code) != 3 or any(sum(c in letters for c in code) != 1 for letters in _AXIS_LETTERS):
        raise ConfigError(
            f"preprocess.orientation: expected a 3-letter code using one of R/L, A/P and S/I each "
            f"(e.g. 'RAS', 'LPS'), got {orientation!r}"
        )
    cosines = sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation(code)
    return np.array(cosines, dtype=np.float64).reshape(3, 3)


def world_corners(vol: Volume | Grid) -> np.ndarray:
    """(8, 3) LPS positions (mm) of the outer voxel edges of a volume's box."""
    shape = np.asarray(vol.shape, dtype=np.float64)
    corners_ijk = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) * shape - 0.5
    affine = np.asarray(vol.direction) @ np.diag(vol.spacing_mm)
    return corners_ijk @ affine.T + np.asarray(vol.origin_mm)


def canonical_grid(vol: Volume | Grid, orientation: str, spacing_mm: Sequence[float]) -> Grid:
    """The axis-aligned grid with ``orientation`` and ``spacing_mm`` that covers ``vol``'s world box.

    Args:
        vol: the volume (or grid) to cover.
        orientation: target axis code, e.g. 'RAS'.
        spacing_mm: target voxel size along the new i, j, k axes (mm).

    Returns:
        A grid whose box (voxel edges) contains the input's box, centred on it; each side is at
        most one output voxel longer than the input's extent along that axis.
    """
    direction = orientation_direction(orientation)
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    corners = world_corners(vol) @ direction  # coordinates along the new axes
    low, high = corners.min(axis=0), corners.max(axis=0)
    # The tolerance keeps an exact multiple (291.84 mm / 2 mm) from growing by one voxel.
    shape = np.maximum(1, np.ceil((high - low) / spacing - 1e-6)).astype(int)
    first_center = (low + high) / 2 - (shape - 1) / 2 * spacing
    origin = direction @ first_center
    return Grid(tuple(int(n) for n in shape), tuple(float(s) for s in spacing),
                tuple(float(o) for o in origin), direction)


def background_value(vol: Volume, kind: VolumeKind) -> float:
    """The value for voxels outside the input: air for CT, the minimum for MR, 0 for labels."""
    if kind == "ct":
        return CT_AIR_HU
    if kind == "mr":
        return float(np.min(vol.array))
    return 0.0


def resample_to_grid(
    vol: Volume,
    grid: Grid | Volume,
    interpolation: Interpolation = "linear",
    kind: VolumeKind = "mr",
    transform: Optional[sitk.Transform] = None,
) -> Volume:
    """Resample ``vol`` onto ``grid``, optionally through a fixed-to-moving ``transform``.

    Args:
        vol: the input volume.
        grid: the output grid (a `Grid` or a `Volume` whose grid is used).
        interpolation: 'linear' or 'bspline' for intensities; labels always use 'nearest'.
        kind: 'ct' (HU, float32, >= -1024), 'mr' (float32) or 'label' (input dtype, nearest).
        transform: maps an output (grid) world point to the input world point (ITK convention);
            identity when None.

    Returns:
        A volume on ``grid``. Intensities are clipped to the input's value range so B-spline
        ringing creates no new values; CT is additionally floored at -1024 HU.
    """
    if isinstance(grid, Volume):
        grid = Grid.of(grid)
    if kind == "label":
        interpolation = "nearest"
    if interpolation not in _SITK_INTERPOLATORS:
        raise ValueError(f"unknown interpolation {interpolation!r}; use linear, bspline or nearest")
    image = vol.to_sitk()
    if kind != "label" and image.GetPixelID() != sitk.sitkFloat32:
        image = sitk.Cast(image, sitk.sitkFloat32)
    output_type = image.GetPixelID()
    resampled = sitk.Resample(
        image, grid.reference_image(), transform or sitk.Transform(3, sitk.sitkIdentity),
        _SITK_INTERPOLATORS[interpolation], background_value(vol, kind), output_type,
    )
    out = Volume.from_sitk(resampled, dict(vol.meta))
    if kind == "label":
        return out
    low, high = float(np.min(vol.array)), float(np.max(vol.array))
    if kind == "ct":
        low = max(low, CT_AIR_HU)
        high = max(high, CT_AIR_HU)
    return out.with_array(np.clip(out.array, low, high).astype(np.float32))


def reorient_and_resample(
    vol: Volume,
    orientation: str = "RAS",
    spacing_mm: Sequence[float] = (2.0, 2.0, 2.0),
    interpolation: Interpolation = "linear",
    modality: VolumeKind = "ct",
) -> Volume:
    """Resample ``vol`` onto its canonical grid (see `canonical_grid`).

    Args:
        vol: the input scan or label map.
        orientation: target axis code, e.g. 'RAS' (the config's ``preprocess.orientation``).
        spacing_mm: target voxel size (mm).
        interpolation: 'linear' or 'bspline' for intensities ('nearest' is used for labels).
        modality: 'ct', 'mr' or 'label'.
    """
    return resample_to_grid(vol, canonical_grid(vol, orientation, spacing_mm), interpolation, modality)


def resample_with_mask(vol: Volume, mask: np.ndarray, grid: Grid | Volume,
                       fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample ``vol`` (linear) and its boolean ``mask`` (nearest) onto ``grid``: inference's last full-size step.

    Args:
        vol: an intensity volume, e.g. a synthetic CT in HU on its cropped canonical grid.
        mask: boolean (X, Y, Z) array on ``vol``'s grid.
        grid: the output grid (a `Grid` or a `Volume` whose grid is used).
        fill: image value outside ``vol``'s box.

    Returns:
        ``(image, mask)`` on ``grid``, shape (X, Y, Z): image float32, mask bool. Both are
        Fortran-ordered views of (Z, Y, X) buffers, SimpleITK's order: reordering 10^7 voxels
        would cost more than the resampling, and writing them back through SimpleITK needs no copy.
        Only the part of ``grid`` around ``vol``'s box is resampled (about 2/3 of a head scan's
        grid); the rest is ``fill`` and False without interpolating anything.
    """
    if mask.shape != vol.shape:
        raise ValueError(f"mask shape {mask.shape} does not match the volume's {vol.shape}")
    if isinstance(grid, Volume):
        grid = Grid.of(grid)
    image_zyx = np.full(grid.shape[::-1], fill, dtype=np.float32)
    mask_zyx = np.zeros(grid.shape[::-1], dtype=np.uint8)  # 0/1, viewed as bool at the end: no comparison pass
    box = covering_box(vol, grid)
    if box is not None:
        reference = sub_grid(grid, box).reference_image()
        identity = sitk.Transform(3, sitk.sitkIdentity)
        image = sitk.Resample(vol.to_sitk(), reference, identity, sitk.sitkLinear, float(fill), sitk.sitkFloat32)
        mask_image = vol.with_array(mask.astype(np.uint8)).to_sitk()
        mask_out = sitk.Resample(mask_image, reference, identity, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        inside = box[::-1]
        image_zyx[inside] = sitk.GetArrayViewFromImage(image)
        mask_zyx[inside] = sitk.GetArrayViewFromImage(mask_out)
    return image_zyx.transpose(2, 1, 0), mask_zyx.view(bool).transpose(2, 1, 0)


def covering_box(vol: Volume | Grid, grid: Grid) -> tuple[slice, slice, slice] | None:
    """Index ranges (X, Y, Z) of the voxels of ``grid`` near ``vol``'s box (a voxel of slack); None if none are."""
    world_to_index = np.linalg.inv(grid.affine)
    corners = world_corners(vol) @ world_to_index[:3, :3].T + world_to_index[:3, 3]
    low = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    high = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, np.asarray(grid.shape))
    if np.any(high <= low):
        return None
    return tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high))


def sub_grid(grid: Grid, box: tuple[slice, slice, slice]) -> Grid:
    """The part of ``grid`` inside the index ranges ``box`` (same spacing and direction)."""
    origin = (grid.affine @ np.append([s.start for s in box], 1.0))[:3]
    return Grid(tuple(s.stop - s.start for s in box), grid.spacing_mm, tuple(float(o) for o in origin), grid.direction)

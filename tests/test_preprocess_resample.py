"""Canonical grid and resampling: geometry, HU floor, label preservation, real scans."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import rotation_matrix
from medtrans.errors import ConfigError
from medtrans.io import Grid, Volume, read_volume
from medtrans.preprocess.resample import (
    canonical_grid,
    covering_box,
    orientation_direction,
    reorient_and_resample,
    resample_to_grid,
    resample_with_mask,
    world_corners,
)


def blob_volume(direction: np.ndarray, spacing=(1.5, 1.0, 2.0), shape=(40, 36, 30)) -> tuple[Volume, np.ndarray]:
    """A CT-like volume (air, a soft-tissue ball with a dense core) and the ball centre in world mm."""
    vol = Volume(np.zeros(shape, np.float32), spacing, (-20.0, 15.0, -30.0), direction)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    world = vol.index_to_world(ijk)
    centre = vol.index_to_world(np.array(shape) / 2 + np.array([3.3, -2.1, 1.7]))
    distance = np.linalg.norm(world - centre, axis=1).reshape(shape)
    hu = np.where(distance < 18, 40.0, -1000.0) + np.where(distance < 6, 1400.0, 0.0)
    return vol.with_array(hu.astype(np.float32)), centre


def world_centroid(vol: Volume, weights: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(weights)
    return vol.index_to_world(ijk).mean(axis=0)


def test_orientation_codes():
    assert np.allclose(orientation_direction("RAS"), np.diag([-1.0, -1.0, 1.0]))
    assert np.allclose(orientation_direction("lps"), np.eye(3))
    for bad in ("RRS", "XYZ", "RA", "RASL"):
        with pytest.raises(ConfigError, match="preprocess.orientation"):
            orientation_direction(bad)


@pytest.mark.parametrize("orientation", ["RAS", "LPS", "PIR"])
def test_canonical_grid_geometry_covers_the_input(oblique_volume, orientation):
    grid = canonical_grid(oblique_volume, orientation, (1.0, 2.0, 1.5))
    out = Volume(np.zeros(grid.shape, np.float32), grid.spacing_mm, grid.origin_mm, grid.direction)
    assert out.orientation == orientation
    assert out.spacing_mm == (1.0, 2.0, 1.5)
    # The output box contains every input voxel edge, and is at most one voxel larger per axis.
    inside = (world_corners(oblique_volume) - np.asarray(grid.origin_mm)) @ grid.direction
    first_edge = -0.5 * np.asarray(grid.spacing_mm)
    last_edge = (np.asarray(grid.shape) - 0.5) * np.asarray(grid.spacing_mm)
    assert np.all(inside >= first_edge - 1e-6) and np.all(inside <= last_edge + 1e-6)
    span_in = inside.max(axis=0) - inside.min(axis=0)
    assert np.all(np.asarray(grid.shape) * np.asarray(grid.spacing_mm) - span_in < np.asarray(grid.spacing_mm) + 1e-6)


def test_resampling_keeps_anatomy_in_place_and_hu_floor():
    rotation = sitk.Euler3DTransform((0, 0, 0), 0.2, -0.15, 0.3).GetMatrix()
    ct, centre = blob_volume(np.array(rotation).reshape(3, 3))
    out = reorient_and_resample(ct, "RAS", (2.0, 2.0, 2.0), "bspline", "ct")
    assert out.orientation == "RAS" and out.spacing_mm == (2.0, 2.0, 2.0)
    assert out.array.dtype == np.float32
    # B-spline rings at the -1000/1440 HU edges; nothing may go below air or above the input maximum.
    assert out.array.min() >= -1024.0 and out.array.max() <= ct.array.max()
    assert np.allclose(world_centroid(out, out.array > 700), centre, atol=0.5)
    assert np.allclose(world_centroid(out, out.array > -500), centre, atol=0.5)


def test_labels_keep_their_values_and_dtype(oblique_volume):
    labels = (np.arange(oblique_volume.array.size) % 5).reshape(oblique_volume.shape).astype(np.uint8) * 3
    vol = oblique_volume.with_array(labels)
    out = reorient_and_resample(vol, "RAS", (0.5, 0.5, 0.5), "bspline", "label")
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) == {0, 3, 6, 9, 12}
    # Nearest neighbour: an output voxel centre takes the label of the input voxel it falls in.
    ijk = np.array([[7, 9, 11], [20, 13, 30], [15, 25, 5]])
    source = np.round(vol.world_to_index(out.index_to_world(ijk))).astype(int)
    inside = np.all((source >= 0) & (source < np.array(vol.shape)), axis=1)
    for (i, j, k), (a, b, c) in zip(ijk[inside], source[inside]):
        assert out.array[i, j, k] == labels[a, b, c]


def test_resample_through_a_transform_moves_content():
    ct, _ = blob_volume(np.eye(3))
    shift = sitk.TranslationTransform(3, (3.0, -2.0, 4.0))  # output point -> input point: (2, -2, 2) voxels
    out = resample_to_grid(ct, ct, "linear", "ct", shift)
    assert np.allclose(out.array[:-2, 2:, :-2], ct.array[2:, :-2, 2:], atol=1e-3)
    assert np.all(out.array[-2:] == -1000.0)  # beyond the input: air (-1024 HU, clipped to the input minimum)


def test_mr_background_and_range():
    mr = Volume(np.full((10, 10, 10), 50.0, np.float32), (1, 1, 1), (0, 0, 0), np.eye(3))
    mr.array[3:7, 3:7, 3:7] = 900.0
    out = reorient_and_resample(mr, "RAS", (0.7, 0.7, 0.7), "bspline", "mr")
    assert out.array.min() >= 50.0 and out.array.max() <= 900.0


def test_real_lung_ct_to_2mm_ras(real_data):
    ct = read_volume(real_data / "lung1_image.nrrd")
    out = reorient_and_resample(ct, "RAS", (2.0, 2.0, 2.0), "linear", "ct")
    assert out.orientation == "RAS" and out.spacing_mm == (2.0, 2.0, 2.0)
    assert out.array.min() >= -1024.0
    extent_in = np.asarray(ct.shape) * np.asarray(ct.spacing_mm)
    extent_out = np.asarray(out.shape) * 2.0
    assert np.all(extent_out >= extent_in - 1e-3) and np.all(extent_out < extent_in + 2.0)
    # Same world box centre, and the same anatomy at the same place: the air/body split agrees.
    assert np.allclose(world_corners(out).mean(axis=0), world_corners(ct).mean(axis=0), atol=1e-3)
    assert np.allclose(world_centroid(out, out.array > -500), world_centroid(ct, ct.array > -500), atol=1.0)
    assert abs((out.array > -500).mean() - (ct.array > -500).mean()) < 0.01


def test_real_brain_mr_to_las_bspline(real_data):
    mr = read_volume(real_data / "brain1_image.nrrd")
    out = reorient_and_resample(mr, "LAS", (1.5, 1.5, 1.5), "bspline", "mr")
    assert out.orientation == "LAS"
    assert out.array.min() >= mr.array.min() and out.array.max() <= mr.array.max()
    assert np.allclose(world_centroid(out, out.array > 300), world_centroid(mr, mr.array > 300), atol=1.5)


def test_resample_with_mask_equals_separate_resamples(oblique_volume):
    """Inference's fused step gives the linear image and the nearest mask of `resample_to_grid`."""
    ct, _ = blob_volume(oblique_volume.direction)
    mask = ct.array > -500
    grid = canonical_grid(ct, "LPS", (1.1, 0.9, 1.7))
    image, mask_out = resample_with_mask(ct, mask, grid, fill=-1000.0)
    expected_image = resample_to_grid(ct, grid, "linear", "ct").array
    expected_mask = resample_to_grid(ct.with_array(mask.astype(np.uint8)), grid, kind="label").array > 0
    assert image.shape == mask_out.shape == grid.shape and image.dtype == np.float32 and mask_out.dtype == bool
    np.testing.assert_allclose(image, np.maximum(expected_image, -1000.0), atol=1e-3)
    np.testing.assert_array_equal(mask_out, expected_mask)
    assert mask_out.any() and not mask_out.all()
    with pytest.raises(ValueError, match="mask shape"):
        resample_with_mask(ct, mask[1:], grid, fill=-1000.0)


def test_resample_with_mask_onto_a_larger_grid_and_a_disjoint_one(oblique_volume):
    """Only the part of the grid near the volume is resampled; the rest is fill, as a full resample gives."""
    ct, _ = blob_volume(oblique_volume.direction)
    mask = ct.array > -500
    wide = Grid.centred((1.3, 1.1, 1.6), (160.0, 150.0, 170.0), world_corners(ct).mean(axis=0),
                        rotation_matrix((-15.0, 10.0, 5.0)))
    image, mask_out = resample_with_mask(ct, mask, wide, fill=-1000.0)
    expected_image = resample_to_grid(ct, wide, "linear", "ct").array
    expected_mask = resample_to_grid(ct.with_array(mask.astype(np.uint8)), wide, kind="label").array > 0
    box = covering_box(ct, wide)
    assert np.prod([s.stop - s.start for s in box]) < 0.5 * np.prod(wide.shape)  # most of the grid is skipped
    np.testing.assert_allclose(image, expected_image, atol=1e-3)
    np.testing.assert_array_equal(mask_out, expected_mask)
    far = Grid((5, 5, 5), (1.0, 1.0, 1.0), (500.0, 500.0, 500.0), np.eye(3))
    image, mask_out = resample_with_mask(ct, mask, far, fill=-1000.0)
    assert (image == -1000.0).all() and not mask_out.any()

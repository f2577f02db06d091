"""Tests for `medtrans.io.volume.Volume`: geometry conventions and the SimpleITK bridge."""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import rotation_matrix

from medtrans.io import Volume


def test_index_to_world_follows_itk_convention(oblique_volume: Volume) -> None:
    image = oblique_volume.to_sitk()
    for ijk in [(0, 0, 0), (1, 2, 3), (6, 8, 4)]:
        expected = image.TransformIndexToPhysicalPoint(ijk)
        assert np.allclose(oblique_volume.index_to_world(ijk), expected, atol=1e-9)


def test_world_to_index_inverts_index_to_world(oblique_volume: Volume) -> None:
    ijk = np.array([[0.0, 0.0, 0.0], [1.5, 2.25, 3.0], [6.0, 8.0, 4.0]])
    assert np.allclose(oblique_volume.world_to_index(oblique_volume.index_to_world(ijk)), ijk, atol=1e-9)


def test_affine_ras_negates_x_and_y_of_lps(oblique_volume: Volume) -> None:
    point_lps = oblique_volume.index_to_world((2, 3, 1))
    point_ras = oblique_volume.affine_ras @ np.array([2, 3, 1, 1.0])
    assert np.allclose(point_ras[:3], point_lps * [-1, -1, 1])


@pytest.mark.parametrize(
    "direction",
    [np.eye(3), np.diag([-1.0, -1.0, 1.0]), np.diag([1.0, 1.0, -1.0]),
     np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), rotation_matrix((20.0, 10.0, -30.0))],
)
def test_orientation_code_matches_nibabel(direction: np.ndarray) -> None:
    vol = Volume(np.zeros((2, 3, 4), np.int16), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), direction)
    assert vol.orientation == "".join(nib.aff2axcodes(vol.affine_ras))


def test_sitk_round_trip_keeps_array_order_and_geometry(oblique_volume: Volume) -> None:
    image = oblique_volume.to_sitk()
    assert image.GetSize() == oblique_volume.shape
    back = Volume.from_sitk(image)
    assert np.array_equal(back.array, oblique_volume.array)
    assert back.same_grid(oblique_volume, tol=1e-12)


@pytest.mark.parametrize(
    ("array", "pixel_type"),
    [
        (np.array([True, False] * 30).reshape(3, 4, 5), sitk.sitkUInt8),
        (np.linspace(0, 1, 60, dtype=np.float16).reshape(3, 4, 5), sitk.sitkFloat32),
        (np.arange(60, dtype=">i2").reshape(3, 4, 5), sitk.sitkInt16),
    ],
)
def test_to_sitk_accepts_bool_float16_and_big_endian(array: np.ndarray, pixel_type: int) -> None:
    image = Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3)).to_sitk()
    assert image.GetPixelID() == pixel_type
    assert np.array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), array.astype(np.float64))


def test_volume_refuses_non_3d_array_and_short_spacing() -> None:
    with pytest.raises(ValueError, match="3D array"):
        Volume(np.zeros((3, 4)), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    with pytest.raises(ValueError, match="3 values"):
        Volume(np.zeros((3, 4, 5)), (1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))


def test_with_array_keeps_geometry_and_checks_shape(oblique_volume: Volume) -> None:
    doubled = oblique_volume.with_array(oblique_volume.array * 2, note="x2")
    assert doubled.same_grid(oblique_volume)
    assert doubled.meta["note"] == "x2"
    with pytest.raises(ValueError, match="does not match"):
        oblique_volume.with_array(np.zeros((2, 2, 2)))


def test_same_grid_detects_each_geometry_difference(oblique_volume: Volume) -> None:
    assert not dataclasses.replace(oblique_volume, spacing_mm=(0.7, 1.3, 3.0)).same_grid(oblique_volume)
    assert not dataclasses.replace(oblique_volume, origin_mm=(-12.5, 30.25, 7.1)).same_grid(oblique_volume)
    assert not dataclasses.replace(oblique_volume, direction=np.eye(3)).same_grid(oblique_volume)


def test_describe_reports_finite_range_and_hides_identity() -> None:
    array = np.array([[[np.nan, -3.0], [2.5, np.inf]]], dtype=np.float32)
    direction = np.diag([1.0, 1.0, -1.0]) @ rotation_matrix((0.0, 0.0, 1e-9))
    meta = {"modality": "MR", "dicom_identity": {"PatientName": "Doe^Jane"}, "path": "/x"}
    facts = Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), direction, meta).describe()
    assert (facts["min"], facts["max"]) == (-3.0, 2.5)
    assert facts["modality"] == "MR"
    assert "dicom_identity" not in facts and "Doe^Jane" not in str(facts)
    assert all(np.copysign(1.0, x) == 1.0 for row in facts["direction"] for x in row if x == 0.0)

"""Tests for `medtrans.io.files`: NIfTI / MetaImage / NRRD reading and writing, bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import rotation_matrix

from medtrans.errors import VolumeReadError
from medtrans.io import Volume, is_volume_file, read_volume, write_volume

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
# The 3D NIfTI files nibabel ships (anatomical: qform+sform; standard: sform only; the others are
# oblique "moved" images); resampled_anat_moved.nii has NaN voxels outside its field of view.
NIBABEL_3D_FILES = ["anatomical.nii", "reoriented_anat_moved.nii", "resampled_anat_moved.nii", "standard.nii.gz"]
LEFT_HANDED = rotation_matrix((12.0, -7.0, 25.0)) @ np.diag([1.0, 1.0, -1.0])


def volume_with(direction: np.ndarray, dtype: type = np.float32) -> Volume:
    """A small volume with anisotropic spacing, a non-trivial origin and the given direction."""
    values = np.random.default_rng(1).normal(100.0, 50.0, size=(6, 8, 5))
    return Volume(values.astype(dtype), (0.7, 1.3, 2.9), (-12.5, 30.25, 7.0), direction)


def assert_same_volume(actual: Volume, expected: Volume, tol: float = 1e-5) -> None:
    assert np.array_equal(actual.array, expected.array)
    assert actual.shape == expected.shape
    assert np.allclose(actual.spacing_mm, expected.spacing_mm, atol=tol)
    assert np.allclose(actual.origin_mm, expected.origin_mm, atol=tol)
    assert np.allclose(actual.direction, expected.direction, atol=tol)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz", ".mha", ".nrrd"])
@pytest.mark.parametrize(
    "direction", [np.eye(3), rotation_matrix((12.0, -7.0, 25.0)), np.diag([-1.0, -1.0, 1.0]), LEFT_HANDED],
    ids=["identity", "oblique", "ras", "left-handed-oblique"],
)
def test_write_read_round_trip_is_exact(tmp_path: Path, suffix: str, direction: np.ndarray) -> None:
    vol = volume_with(direction)
    path = write_volume(vol, tmp_path / f"vol{suffix}")
    back = read_volume(path)
    assert_same_volume(back, vol)
    assert back.orientation == vol.orientation
    again = read_volume(write_volume(back, tmp_path / f"again{suffix}"))
    assert_same_volume(again, vol)


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float64])
def test_round_trip_keeps_dtype(tmp_path: Path, dtype: type) -> None:
    vol = volume_with(rotation_matrix((0.0, 30.0, 0.0)), dtype)
    back = read_volume(write_volume(vol, tmp_path / "vol.nii.gz"))
    assert back.array.dtype == dtype
    assert_same_volume(back, vol)


def test_written_nifti_has_the_volume_affine_for_nibabel(tmp_path: Path) -> None:
    vol = volume_with(LEFT_HANDED)
    img = nib.load(write_volume(vol, tmp_path / "vol.nii.gz"))
    assert np.allclose(img.affine, vol.affine_ras, atol=1e-5)
    assert np.array_equal(np.asanyarray(img.dataobj), vol.array)


def nifti_with(path: Path, sform: np.ndarray | None, qform: np.ndarray | None, sform_code: int = 2) -> Path:
    """Save an int16 ramp with the given sform/qform (None leaves that form unset, code 0)."""
    img = nib.Nifti1Image(np.arange(5 * 6 * 4, dtype=np.int16).reshape(5, 6, 4), None)
    img.set_sform(sform, sform_code if sform is not None else 0)
    img.set_qform(qform, 1 if qform is not None else 0)
    nib.save(img, path)
    return path


def oblique_affine(angles_deg: tuple[float, float, float], origin: tuple[float, float, float]) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = rotation_matrix(angles_deg) @ np.diag([0.8, 1.1, 3.0])
    affine[:3, 3] = origin
    return affine


OBLIQUE = oblique_affine((12.0, -7.0, 25.0), (-40.0, 12.5, 80.0))
OTHER = oblique_affine((0.0, 0.0, 40.0), (5.0, 6.0, 7.0))


@pytest.mark.parametrize(
    ("sform", "qform"),
    [(OBLIQUE, OBLIQUE), (OBLIQUE, None), (None, OBLIQUE), (OBLIQUE, OTHER), (None, None),
     (OBLIQUE @ np.diag([-1.0, 1.0, 1.0, 1.0]), None)],
    ids=["sform+qform", "sform-only", "qform-only", "sform-differs-from-qform", "no-transform", "left-handed"],
)
def test_nifti_affine_matches_nibabel(tmp_path: Path, sform: np.ndarray | None, qform: np.ndarray | None) -> None:
    path = nifti_with(tmp_path / "img.nii.gz", sform, qform)
    vol = read_volume(path)
    img = nib.load(path)
    assert np.allclose(vol.affine_ras, img.affine, atol=1e-6)
    assert np.array_equal(vol.array, np.asanyarray(img.dataobj))


@pytest.mark.parametrize("name", NIBABEL_3D_FILES)
def test_nibabel_bundled_files_match_nibabel(name: str) -> None:
    img = nib.load(NIBABEL_DATA / name)
    vol = read_volume(NIBABEL_DATA / name, allow_nonfinite=True)
    assert np.allclose(vol.affine_ras, img.affine, atol=1e-6)
    assert vol.array.dtype.isnative
    assert np.array_equal(vol.array, np.asanyarray(img.dataobj), equal_nan=True)


def test_nifti_scale_factors_are_applied(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    img.header.set_slope_inter(0.5, -10.0)
    nib.save(img, tmp_path / "scaled.nii")
    vol = read_volume(tmp_path / "scaled.nii")
    assert vol.array.dtype == np.float32
    assert np.array_equal(vol.array, np.arange(24).reshape(2, 3, 4) * 0.5 - 10.0)


def test_sheared_sform_falls_back_to_qform_with_warning(tmp_path: Path) -> None:
    sheared = OBLIQUE.copy()
    sheared[0, 1] += 0.3
    path = nifti_with(tmp_path / "sheared.nii.gz", sheared, OBLIQUE)
    with pytest.warns(UserWarning, match="sheared"):
        vol = read_volume(path)
    assert np.allclose(vol.affine_ras, OBLIQUE, atol=1e-5)


@pytest.mark.faults
def test_sheared_affine_without_qform_is_refused(tmp_path: Path) -> None:
    sheared = OBLIQUE.copy()
    sheared[0, 1] += 0.3
    path = nifti_with(tmp_path / "sheared.nii.gz", sheared, None)
    with pytest.raises(VolumeReadError, match="sheared") as err:
        read_volume(path)
    assert str(path) in str(err.value)


def test_nifti2_is_read(tmp_path: Path) -> None:
    nib.save(nib.Nifti2Image(np.arange(60, dtype=np.float32).reshape(3, 4, 5), OBLIQUE), tmp_path / "v2.nii")
    vol = read_volume(tmp_path / "v2.nii")
    assert np.allclose(vol.affine_ras, OBLIQUE, atol=1e-6)
    assert vol.array[2, 3, 4] == 59.0


def test_single_volume_4d_file_is_read_as_3d(tmp_path: Path) -> None:
    nib.save(nib.Nifti1Image(np.ones((3, 4, 5, 1), np.float32), np.eye(4)), tmp_path / "one.nii.gz")
    assert read_volume(tmp_path / "one.nii.gz").shape == (3, 4, 5)


def test_metaimage_with_separate_raw_file_is_read(tmp_path: Path) -> None:
    vol = volume_with(rotation_matrix((5.0, 0.0, -15.0)))
    sitk.WriteImage(vol.to_sitk(), str(tmp_path / "vol.mhd"))
    assert (tmp_path / "vol.raw").exists() or (tmp_path / "vol.zraw").exists()
    assert_same_volume(read_volume(tmp_path / "vol.mhd"), vol)


def test_is_volume_file(tmp_path: Path) -> None:
    path = write_volume(volume_with(np.eye(3)), tmp_path / "a.nii.gz")
    (tmp_path / "notes.txt").write_text("x")
    assert is_volume_file(path)
    assert not is_volume_file(tmp_path / "notes.txt")
    assert not is_volume_file(tmp_path)


def test_write_refuses_unknown_format_and_keeps_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="write_dicom_series"):
        write_volume(volume_with(np.eye(3)), tmp_path / "vol.png")
    assert list(tmp_path.iterdir()) == []


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.faults
def test_missing_path_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(VolumeReadError, match="not found") as err:
        read_volume(tmp_path / "nope.nii.gz")
    assert "nope.nii.gz" in str(err.value)


@pytest.mark.faults
def test_empty_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    with pytest.raises(VolumeReadError, match="empty") as err:
        read_volume(tmp_path / "empty.nii.gz")
    assert "empty.nii.gz" in str(err.value)


@pytest.mark.faults
@pytest.mark.parametrize("keep_fraction", [0.5, 0.01])
def test_truncated_nifti_gz_names_the_file(tmp_path: Path, keep_fraction: float) -> None:
    noise = np.random.default_rng(2).normal(size=(30, 30, 30)).astype(np.float32)
    full = write_volume(Volume(noise, (1, 1, 1), (0, 0, 0), np.eye(3)), tmp_path / "full.nii.gz").read_bytes()
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(full[: max(1, int(len(full) * keep_fraction))])
    with pytest.raises(VolumeReadError, match="corrupt or truncated") as err:
        read_volume(path)
    assert "cut.nii.gz" in str(err.value)


@pytest.mark.faults
def test_truncated_mha_names_the_file(tmp_path: Path) -> None:
    noise = np.random.default_rng(3).normal(size=(20, 20, 20)).astype(np.float32)
    full = write_volume(Volume(noise, (1, 1, 1), (0, 0, 0), np.eye(3)), tmp_path / "full.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(full[: len(full) // 2])
    with pytest.raises(VolumeReadError) as err:
        read_volume(tmp_path / "cut.mha")
    assert "cut.mha" in str(err.value)


@pytest.mark.faults
def test_nan_voxels_are_refused_unless_allowed(tmp_path: Path) -> None:
    array = np.zeros((4, 4, 4), np.float32)
    array[1, 2, 3] = np.nan
    array[0, 0, 0] = np.inf
    path = write_volume(Volume(array, (1, 1, 1), (0, 0, 0), np.eye(3)), tmp_path / "nan.nii.gz")
    with pytest.raises(VolumeReadError, match="2 voxel") as err:
        read_volume(path)
    assert "nan.nii.gz" in str(err.value)
    assert np.isnan(read_volume(path, allow_nonfinite=True).array[1, 2, 3])


@pytest.mark.faults
def test_real_file_with_nan_voxels_is_refused() -> None:
    with pytest.raises(VolumeReadError, match="NaN") as err:
        read_volume(NIBABEL_DATA / "resampled_anat_moved.nii")
    assert "resampled_anat_moved.nii" in str(err.value)


@pytest.mark.faults
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_4d_volume_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"four{suffix}"
    if suffix == ".nii.gz":
        nib.save(nib.Nifti1Image(np.zeros((3, 4, 5, 2), np.float32), np.eye(4)), path)
    else:
        sitk.WriteImage(sitk.Image([3, 4, 5, 2], sitk.sitkFloat32), str(path))
    with pytest.raises(VolumeReadError, match="expected a 3D volume") as err:
        read_volume(path)
    assert path.name in str(err.value)


@pytest.mark.faults
@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_zero_spacing_is_refused(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"flat{suffix}"
    if suffix == ".nii.gz":
        nifti_with(path, np.diag([1.0, 1.0, 0.0, 1.0]), None)
    else:
        path.write_text(
            "ObjectType = Image\nNDims = 3\nDimSize = 3 4 5\nElementSpacing = 1 0 1\n"
            "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n" + "\0" * 60
        )
    with pytest.raises(VolumeReadError, match="spacing") as err:
        read_volume(path)
    assert path.name in str(err.value)


@pytest.mark.faults
def test_unsupported_suffix_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "scan.png").write_bytes(b"\x89PNG....")
    with pytest.raises(VolumeReadError, match="unsupported") as err:
        read_volume(tmp_path / "scan.png")
    assert "scan.png" in str(err.value)


@pytest.mark.faults
def test_single_dicom_file_points_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "IM0001.dcm").write_bytes(b"\0" * 128 + b"DICM")
    with pytest.raises(VolumeReadError, match="pass the folder") as err:
        read_volume(tmp_path / "IM0001.dcm")
    assert "IM0001.dcm" in str(err.value)


@pytest.mark.faults
def test_gzip_of_garbage_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "junk.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 40))
    with pytest.raises(VolumeReadError) as err:
        read_volume(tmp_path / "junk.nii.gz")
    assert "junk.nii.gz" in str(err.value)


# --- real scans -----------------------------------------------------------------------------


def test_real_lung_ct_nrrd_facts(real_data: Path) -> None:
    vol = read_volume(real_data / "lung1_image.nrrd")
    assert vol.shape == (512, 512, 48)
    assert np.allclose(vol.spacing_mm, (0.570, 0.570, 5.0), atol=1e-3)
    assert vol.array.dtype == np.int16
    assert (int(vol.array.min()), int(vol.array.max())) == (-1024, 3071)
    lung_air = np.count_nonzero(vol.array < -900) / vol.array.size
    assert 0.2 < lung_air < 0.8  # air outside the body and inside the lungs


def test_real_lung_ct_round_trips_through_nifti(real_data: Path, tmp_path: Path) -> None:
    vol = read_volume(real_data / "lung1_image.nrrd")
    back = read_volume(write_volume(vol, tmp_path / "lung1.nii.gz"))
    assert_same_volume(back, vol)
    assert np.allclose(nib.load(tmp_path / "lung1.nii.gz").affine, vol.affine_ras, atol=1e-4)


def test_real_brain_mr_round_trips_through_mha(real_data: Path, tmp_path: Path) -> None:
    vol = read_volume(real_data / "brain1_image.nrrd")
    assert vol.shape == (256, 256, 25)
    assert np.allclose(vol.spacing_mm, (0.781, 0.781, 6.5), atol=1e-3)
    assert_same_volume(read_volume(write_volume(vol, tmp_path / "brain1.mha")), vol)


def test_meta_records_source_path(tmp_path: Path) -> None:
    path = write_volume(volume_with(np.eye(3)), tmp_path / "v.nrrd")
    assert read_volume(path).meta["path"] == str(path)

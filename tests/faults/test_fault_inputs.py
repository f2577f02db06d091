"""Fault injection: bad scan files given to `medtrans info`, `infer` and `evaluate`.

Each case writes one broken input and checks the exact outcome: exit code 2, one error line that
names the file and the problem, no traceback (``--debug`` shows it), and no output written.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pytest

from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (assert_clean_error, assert_debug_shows_traceback, assert_no_temp_files, ct_scan,
                      infer_checkpoint, mr_scan, run_cli)
from medtrans.io import Volume, read_volume, write_volume

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]


def nifti_without_sform(path: Path, pixdim_mm: tuple[float, float, float]) -> Path:
    """A NIfTI file with neither sform nor qform, so its spacing comes from raw ``pixdim`` (unchecked)."""
    plain = path.with_name("plain.nii")
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), plain)
    raw = bytearray(plain.read_bytes())
    pixdim = list(struct.unpack("<8f", raw[76:108]))
    pixdim[1:4] = pixdim_mm
    raw[76:108] = struct.pack("<8f", *pixdim)
    raw[252:256] = struct.pack("<hh", 0, 0)  # qform_code, sform_code
    path.write_bytes(gzip.compress(bytes(raw)))
    plain.unlink()
    return path


def metaimage_with_spacing(path: Path, spacing: str) -> Path:
    """A 4x4x4 MetaImage file whose header says ``ElementSpacing = spacing``."""
    header = (f"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementSpacing = {spacing}\n"
              "ElementType = MET_FLOAT\nElementDataFile = LOCAL\n")
    path.write_bytes(header.encode() + np.full(64, 7.0, np.float32).tobytes())
    return path


def missing_path(folder: Path) -> Path:
    return folder / "missing.nii.gz"


def empty_file(folder: Path) -> Path:
    path = folder / "empty.nii.gz"
    path.write_bytes(b"")
    return path


def truncated_nii_gz(folder: Path) -> Path:
    path = write_volume(mr_scan(), folder / "truncated.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def nan_inf_voxels(folder: Path) -> Path:
    scan = mr_scan()
    array = scan.array.copy()
    array[3, 4, 5], array[10, 10, 6] = np.nan, np.inf
    return write_volume(scan.with_array(array), folder / "nan.nii.gz")


def volume_4d(folder: Path) -> Path:
    path = folder / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 3), np.float32), np.eye(4)), path)
    return path


def zero_spacing_in_affine(folder: Path) -> Path:
    path = folder / "flat_affine.nii.gz"
    img = nib.Nifti1Image(np.ones((8, 8, 8), np.float32), None)
    img.set_sform(np.diag([3.0, 3.0, 0.0, 1.0]), 2)
    img.set_qform(None, 0)
    nib.save(img, path)
    return path


def zero_spacing_in_pixdim(folder: Path) -> Path:
    return nifti_without_sform(folder / "flat_pixdim.nii.gz", (3.0, 0.0, 3.0))


def negative_spacing_in_pixdim(folder: Path) -> Path:
    return nifti_without_sform(folder / "negative_pixdim.nii.gz", (3.0, -3.0, 3.0))


def zero_spacing_in_metaimage(folder: Path) -> Path:
    return metaimage_with_spacing(folder / "flat.mha", "1 0 1")


# fault -> (builder, words the error line must hold besides the file name)
READ_FAULTS: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "missing_path": (missing_path, ("not found",)),
    "empty_file": (empty_file, ("file is empty",)),
    "truncated_nii_gz": (truncated_nii_gz, ("corrupt or truncated",)),
    "volume_4d": (volume_4d, ("expected a 3D volume, got 4D",)),
    "zero_spacing_in_affine": (zero_spacing_in_affine, ("spacing must be positive",)),
    "zero_spacing_in_pixdim": (zero_spacing_in_pixdim, ("spacing must be positive", "0.0")),
    "negative_spacing_in_pixdim": (negative_spacing_in_pixdim, ("spacing must be positive", "-3.0")),
    "zero_spacing_in_metaimage": (zero_spacing_in_metaimage, ("spacing",)),
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return infer_checkpoint(tmp_path_factory.mktemp("checkpoint") / "best.pt")


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_info_names_the_file_and_problem(fault: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    build, words = READ_FAULTS[fault]
    path = build(tmp_path)
    result = run_cli(["info", path], capsys)
    assert_clean_error(result, "info", path.name, *words)
    assert result.out == ""


@pytest.mark.parametrize("fault", READ_FAULTS)
def test_infer_names_the_file_and_writes_nothing(fault: str, tmp_path: Path, checkpoint: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    build, words = READ_FAULTS[fault]
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = build(inputs)
    out = tmp_path / "out" / "sct.nii.gz"
    result = run_cli(["infer", "--checkpoint", checkpoint, "--input", path, "--output", out, "--device", "cpu"], capsys)
    assert_clean_error(result, "infer", path.name, *words)
    assert not out.parent.exists() or not any(out.parent.iterdir())
    assert_no_temp_files(tmp_path)


def test_debug_shows_the_traceback_of_a_read_fault(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert_debug_shows_traceback(["info", truncated_nii_gz(tmp_path)], capsys, "info")


def test_nan_inf_voxels_are_counted_by_info_and_refused_by_infer(tmp_path: Path, checkpoint: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    path = nan_inf_voxels(tmp_path)
    described = run_cli(["info", path], capsys)
    assert described.code == 0 and "non-finite   2 NaN/Inf voxel(s)" in described.out
    out = tmp_path / "sct.nii.gz"
    result = run_cli(["infer", "--checkpoint", checkpoint, "--input", path, "--output", out, "--device", "cpu"], capsys)
    assert_clean_error(result, "infer", path.name, "2 voxel(s) are NaN or Inf")
    assert not out.exists()


def test_nan_inf_voxels_in_a_synthetic_ct_are_refused_by_evaluate(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    target = write_volume(ct_scan(), tmp_path / "target" / "s1.nii.gz")
    pred_array = ct_scan().array.astype(np.float32)
    pred_array[5, 5, 5] = np.nan
    write_volume(ct_scan().with_array(pred_array), tmp_path / "pred" / "s1.nii.gz")
    result = run_cli(["evaluate", "--pred", tmp_path / "pred", "--target", target.parent, "--out", tmp_path / "eval",
                      "--device", "cpu"], capsys)
    assert_clean_error(result, "evaluate", "s1.nii.gz", "NaN or Inf")
    assert not (tmp_path / "eval").exists()


def test_negative_spacing_in_a_metaimage_header_is_read_as_a_flipped_axis(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    """ITK's convention: ElementSpacing -1 along j means j runs towards -y; every voxel keeps its
    world position, so nothing is lost and the volume is accepted with a positive spacing."""
    path = metaimage_with_spacing(tmp_path / "negative.mha", "1 -2 1")
    vol = read_volume(path)
    assert vol.spacing_mm == (1.0, 2.0, 1.0)
    np.testing.assert_allclose(vol.index_to_world((0, 3, 0)), np.asarray(vol.origin_mm) + (0.0, -6.0, 0.0))
    result = run_cli(["info", path], capsys)
    assert result.code == 0 and "spacing      1 x 2 x 1 mm" in result.out and "orientation  LAS" in result.out


def test_ct_not_in_hu_is_refused_by_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A CT stored as raw 0..4095 detector values (rescale slope/intercept never applied)."""
    raw = ct_scan().array.astype(np.int32) + 1024
    write_volume(ct_scan().with_array(np.clip(raw, 0, 4095).astype(np.int16)), tmp_path / "target" / "s1.nii.gz")
    write_volume(ct_scan(), tmp_path / "pred" / "s1.nii.gz")
    result = run_cli(["evaluate", "--pred", tmp_path / "pred", "--target", tmp_path / "target",
                      "--out", tmp_path / "eval", "--device", "cpu"], capsys)
    assert_clean_error(result, "evaluate", "s1.nii.gz", "does not look like a CT in HU", "no negative values")
    assert not (tmp_path / "eval").exists()


def test_missing_prediction_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_volume(ct_scan(), tmp_path / "target" / "s1.nii.gz")
    result = run_cli(["evaluate", "--pred", tmp_path / "nowhere", "--target", tmp_path / "target",
                      "--out", tmp_path / "eval"], capsys)
    assert_clean_error(result, "evaluate", "nowhere", "prediction folder not found")
    assert not (tmp_path / "eval").exists()


def test_prediction_on_another_grid_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_volume(ct_scan(), tmp_path / "target" / "s1.nii.gz")
    shifted = Volume(ct_scan().array, (3.0, 3.0, 3.0), (0.0, 0.0, 0.0), np.eye(3))
    write_volume(shifted, tmp_path / "pred" / "s1.nii.gz")
    result = run_cli(["evaluate", "--pred", tmp_path / "pred", "--target", tmp_path / "target",
                      "--out", tmp_path / "eval", "--device", "cpu"], capsys)
    assert_clean_error(result, "evaluate", "s1.nii.gz", "not on the same grid", "origin")
    assert not (tmp_path / "eval").exists()

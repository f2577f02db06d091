"""Tests for `medtrans info`: what it prints for files, DICOM folders and multi-series folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import rotation_matrix
from pydicom.data import get_testdata_file

from medtrans.cli import main
from medtrans.io import Volume, write_dicom_series, write_volume

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"
CT5N_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"
SCOUT_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.2"


def run_info(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["info", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_info_on_real_nrrd(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_info(capsys, str(real_data / "lung1_image.nrrd"))
    assert code == 0
    assert "512 x 512 x 48" in out
    assert "0.570312 x 0.570312 x 5 mm" in out
    assert "orientation  LPS" in out
    assert "int16" in out
    assert "-1024 .. 3071" in out


def test_info_on_oblique_nifti_reports_ras_orientation_and_direction(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    direction = np.diag([-1.0, -1.0, 1.0]) @ rotation_matrix((0.0, 0.0, 10.0))
    vol = Volume(np.arange(60, dtype=np.float32).reshape(3, 4, 5), (0.5, 0.75, 2.0), (10.0, -20.0, 5.5), direction)
    path = write_volume(vol, tmp_path / "oblique.nii.gz")
    code, out, _ = run_info(capsys, str(path))
    assert code == 0
    assert "orientation  RAS" in out
    assert "(10, -20, 5.5) mm" in out
    assert f"[{direction[0, 0]:9.6f}, {direction[0, 1]:9.6f}, {direction[0, 2]:9.6f}]" in out
    assert "0 .. 59" in out and "float32" in out
    assert "modality" not in out


def test_info_json_has_the_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vol = Volume(np.full((2, 3, 4), 7, np.int16), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), np.eye(3))
    code, out, _ = run_info(capsys, str(write_volume(vol, tmp_path / "v.mha")), "--json")
    facts = json.loads(out)
    assert code == 0
    assert facts["shape"] == [2, 3, 4] and facts["spacing_mm"] == [1.0, 2.0, 3.0]
    assert facts["orientation"] == "LPS" and facts["dtype"] == "int16"
    assert (facts["min"], facts["max"]) == (7.0, 7.0)


def test_info_on_dicom_folder_shows_modality_and_series_but_no_patient(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder)
    code, out, _ = run_info(capsys, str(folder))
    assert code == 0
    assert "modality     CT" in out
    assert "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322" in out
    assert "128 x 128 x 1" in out and "-896 .. 1167" in out
    assert "CompressedSamples" not in out and "1CT1" not in out


def test_info_lists_series_of_a_multi_series_folder(capsys: pytest.CaptureFixture[str]) -> None:
    folder = DICOMDIR_TESTS / "98892001"
    code, out, _ = run_info(capsys, str(folder))
    assert code == 0
    assert "2 DICOM series" in out
    assert CT5N_UID in out and SCOUT_UID in out
    assert "SmartScore - Gated 0.5 sec" in out and "Scout" in out
    assert "--series UID" in out
    code, out, _ = run_info(capsys, str(folder), "--json")
    listing = json.loads(out)["series"]
    found = {(s["series_uid"], s["n_files"], s["modality"]) for s in listing}
    assert found == {(CT5N_UID, 5, "CT"), (SCOUT_UID, 2, "CT")}


def test_info_describes_the_chosen_series(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_info(capsys, str(DICOMDIR_TESTS / "98892001"), "--series", CT5N_UID, "--json")
    facts = json.loads(out)
    assert code == 0
    assert facts["shape"] == [16, 16, 5] and facts["series_uid"] == CT5N_UID
    assert facts["modality"] == "CT" and facts["n_files"] == 5


def test_info_reports_nan_voxels_instead_of_failing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    array = np.ones((3, 3, 3), np.float32)
    array[0, 0, 0] = np.nan
    path = write_volume(Volume(array, (1, 1, 1), (0, 0, 0), np.eye(3)), tmp_path / "nan.nrrd")
    code, out, _ = run_info(capsys, str(path))
    assert code == 0
    assert "1 NaN/Inf voxel(s)" in out and "1 .. 1" in out


def test_info_on_written_mr_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vol = Volume(np.arange(24, dtype=np.uint16).reshape(2, 3, 4), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    folder = write_dicom_series(vol, tmp_path / "mr", modality="MR", series_description="T1 test")
    code, out, _ = run_info(capsys, str(folder))
    assert code == 0
    assert "modality     MR" in out and "description  T1 test" in out and "files        4" in out


@pytest.mark.faults
@pytest.mark.parametrize("name", ["missing.nii.gz", "empty_folder"])
def test_info_error_names_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    if name == "empty_folder":
        (tmp_path / name).mkdir()
    code, out, err = run_info(capsys, str(tmp_path / name))
    assert code == 2
    assert out == ""
    assert str(tmp_path / name) in err and "Traceback" not in err

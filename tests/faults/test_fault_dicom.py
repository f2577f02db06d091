"""Fault injection: DICOM folders as found in the wild (mixed series, missing slices, stray files,
corrupt slices), given to `medtrans info` and `medtrans infer`."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import assert_clean_error, assert_no_temp_files, ct_scan, infer_checkpoint, mr_scan, run_cli
from medtrans.io import read_volume, write_dicom_series

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return infer_checkpoint(tmp_path_factory.mktemp("checkpoint") / "best.pt")


def mr_series(folder: Path) -> Path:
    """A 12-slice MR series (integer values, as scanners store them)."""
    scan = mr_scan()
    return write_dicom_series(scan.with_array(scan.array.round()), folder, modality="MR")


def infer_argv(checkpoint: Path, source: Path, out: Path, *extra: object) -> list:
    return ["infer", "--checkpoint", checkpoint, "--input", source, "--output", out, "--device", "cpu", *extra]


def test_mixed_series_are_listed_by_info_and_must_be_chosen_for_infer(tmp_path: Path, checkpoint: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "mixed"
    mr_series(tmp_path / "mr")
    write_dicom_series(ct_scan(), tmp_path / "ct", modality="CT")
    folder.mkdir()
    for source in (tmp_path / "mr", tmp_path / "ct"):
        for path in source.iterdir():
            path.rename(folder / f"{source.name}_{path.name}")
    mr_uid = str(pydicom.dcmread(next(folder.glob("mr_*")), stop_before_pixels=True).SeriesInstanceUID)

    listing = run_cli(["info", folder, "--json"], capsys)
    assert listing.code == 0
    series = json.loads(listing.out)["series"]
    assert sorted((s["modality"], s["n_files"]) for s in series) == [("CT", 12), ("MR", 12)]

    out = tmp_path / "sct.nii.gz"
    refused = run_cli(infer_argv(checkpoint, folder, out), capsys)
    line = assert_clean_error(refused, "infer", str(folder), "holds 2 DICOM series", "--series UID")
    assert mr_uid in refused.err and line in refused.err
    assert not out.exists()

    chosen = run_cli(infer_argv(checkpoint, folder, out, "--series", mr_uid), capsys)
    assert chosen.code == 0, chosen.err
    assert read_volume(out).shape == mr_scan().shape


def test_missing_slice_names_the_file_after_the_gap(tmp_path: Path, checkpoint: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    folder = mr_series(tmp_path / "mr")
    (folder / "slice_0006.dcm").unlink()
    for argv in (["info", folder], infer_argv(checkpoint, folder, tmp_path / "sct.nii.gz")):
        result = run_cli(argv, capsys)
        assert_clean_error(result, argv[0], "slice_0007.dcm", "uneven slice spacing", "a slice is missing")
    assert not (tmp_path / "sct.nii.gz").exists()


def test_non_image_files_are_skipped(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    folder = mr_series(tmp_path / "mr")
    (folder / "README.txt").write_text("exported by PACS\n")
    (folder / "thumbs.db").write_bytes(b"\x00\x01binary")
    (folder / "notes").mkdir()
    (folder / "notes" / "report.json").write_text("{}")
    result = run_cli(["info", folder, "--json"], capsys)
    assert result.code == 0, result.err
    facts = json.loads(result.out)
    assert facts["n_files"] == 12 and facts["shape"] == list(mr_scan().shape)
    out = tmp_path / "sct.nii.gz"
    assert run_cli(infer_argv(checkpoint, folder, out), capsys).code == 0
    assert read_volume(out).shape == mr_scan().shape


def test_folder_without_dicom_images_lists_what_it_skipped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "README.txt").write_text("nothing here\n")
    (folder / "index.html").write_text("<html></html>")
    result = run_cli(["info", folder], capsys)
    assert_clean_error(result, "info", str(folder), "no DICOM image files found", "2 other file(s) skipped",
                       "README.txt")


def test_truncated_slice_names_the_file(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    folder = mr_series(tmp_path / "mr")
    broken = folder / "slice_0004.dcm"
    broken.write_bytes(broken.read_bytes()[:400])
    out = tmp_path / "sct.nii.gz"
    result = run_cli(infer_argv(checkpoint, folder, out), capsys)
    assert_clean_error(result, "infer", "slice_0004.dcm")
    assert "corrupt" in result.err or "truncated" in result.err
    assert not out.exists()
    assert_no_temp_files(tmp_path)

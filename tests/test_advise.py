"""`medtrans advise`: the pix2pix-or-CycleGAN question answered from the data, not the file names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medtrans.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def recommendation(capsys: pytest.CaptureFixture, *args: str) -> str:
    assert main(["advise", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("Recommendation: ")
    return lines[-1].removeprefix("Recommendation: ")


def test_paired_sample_cohort_gets_pix2pix(capsys: pytest.CaptureFixture) -> None:
    assert recommendation(capsys, str(SAMPLE / "paired")) == "pix2pix"


def test_unpaired_sample_cohorts_get_cyclegan(capsys: pytest.CaptureFixture) -> None:
    assert recommendation(capsys, str(SAMPLE / "unpaired" / "healthy"), str(SAMPLE / "unpaired" / "pathology"),
                          "--modality-b", "mr") == "CycleGAN"


def test_unrelated_cohorts_sharing_file_names_get_cyclegan(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for i in range(1, 5):
        (tmp_path / "mr").mkdir(exist_ok=True)
        (tmp_path / "ct").mkdir(exist_ok=True)
        shutil.copy(SAMPLE / "paired" / f"p0{i}" / "mr.nii.gz", tmp_path / "mr" / f"s{i}.nii.gz")
        shutil.copy(SAMPLE / "paired" / f"p0{i + 4}" / "ct.nii.gz", tmp_path / "ct" / f"s{i}.nii.gz")
    assert recommendation(capsys, str(tmp_path / "mr"), str(tmp_path / "ct")) == "CycleGAN"
    # the same files under their true pairing are recognised as pairs
    for i in range(1, 5):
        shutil.copy(SAMPLE / "paired" / f"p0{i}" / "ct.nii.gz", tmp_path / "ct" / f"s{i}.nii.gz")
    assert recommendation(capsys, str(tmp_path / "mr"), str(tmp_path / "ct")) == "pix2pix"

"""Finding subjects: paired and unpaired folder layouts, DICOM folders, CSVs, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtrans.config import DataConfig
from medtrans.errors import MedtransError
from medtrans.preprocess.cohort import cohort_subjects, find_cohort, input_locations


def touch(path: Path, content: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def dicom_file(path: Path) -> Path:
    return touch(path, b"\0" * 128 + b"DICM" + b"\0" * 16)


def test_paired_folder_with_files_dicom_and_ignored_extras(tmp_path):
    root = tmp_path / "paired"
    touch(root / "s1" / "mr.nii.gz"), touch(root / "s1" / "ct.nrrd"), touch(root / "s1" / "truth.json")
    touch(root / "s1" / "lesion.nii.gz")
    dicom_file(root / "s2" / "mr" / "IM0001"), dicom_file(root / "s2" / "ct" / "1.dcm")
    touch(root / "README.md"), touch(root / ".cache" / "x")
    mode, subjects = find_cohort(DataConfig(paired=str(root)))
    assert mode == "paired"
    assert [s.subject for s in subjects] == ["s1", "s2"]
    assert subjects[0].inputs == {"mr": root / "s1" / "mr.nii.gz", "ct": root / "s1" / "ct.nrrd"}
    assert subjects[1].inputs == {"mr": root / "s2" / "mr", "ct": root / "s2" / "ct"}
    assert {s.domain for s in subjects} == {"paired"}


def test_unpaired_folders_three_layouts(tmp_path):
    a, b = tmp_path / "healthy", tmp_path / "pathology"
    touch(a / "h1.nii"), touch(a / "h2" / "image.mha"), dicom_file(a / "h3" / "slice1")
    touch(a / "notes.txt")
    touch(b / "d1" / "image.nii.gz"), touch(b / "d1" / "lesion.nii.gz")
    mode, subjects = find_cohort(DataConfig(domain_a=str(a), domain_b=str(b), modality_b="mr"))
    assert mode == "unpaired"
    assert [(s.domain, s.subject, s.modality) for s in subjects] == [
        ("a", "h1", "mr"), ("a", "h2", "mr"), ("a", "h3", "mr"), ("b", "d1", "mr")]
    assert subjects[2].inputs == {"image": a / "h3"}
    assert subjects[3].key == "b/d1"


def test_csv_paths_relative_to_the_csv(tmp_path):
    touch(tmp_path / "scans" / "m.nii.gz"), touch(tmp_path / "scans" / "c.nii.gz")
    table = tmp_path / "lists" / "pairs.csv"
    touch(table, b"subject,mr,ct\nsubjA,../scans/m.nii.gz,../scans/c.nii.gz\n")
    mode, subjects = find_cohort(DataConfig(paired=str(table)))
    assert subjects[0].inputs["mr"] == (tmp_path / "scans" / "m.nii.gz").resolve()
    assert input_locations(DataConfig(paired=str(table)), subjects) == [(tmp_path / "scans").resolve()]


@pytest.mark.parametrize("files, message", [
    ({"s1/mr.nii.gz": b"x"}, "s1: no ct scan"),
    ({"s1/mr.nii.gz": b"x", "s1/mr.nrrd": b"x", "s1/ct.nii": b"x"}, "several inputs for 'mr'"),
    ({"README": b"x"}, "no subjects found"),
])
def test_paired_folder_errors(tmp_path, files, message):
    for name, content in files.items():
        touch(tmp_path / "root" / name, content)
    with pytest.raises(MedtransError, match=message):
        cohort_subjects(tmp_path / "root", ("mr", "ct"), "paired", None)


@pytest.mark.parametrize("csv_text, message", [
    ("subject,image\n", "no subjects found"),
    ("name,image\nx,a.nii\n", "needs columns image, subject"),
    ("subject,image\nx,missing.nii\n", "line 2: image file 'missing.nii' not found"),
    ("subject,image\n../x,a.nii\n", "cannot be used as a folder name"),
    ("subject,image\nx,a.nii\nx,a.nii\n", "appears more than once"),
])
def test_csv_errors(tmp_path, csv_text, message):
    touch(tmp_path / "a.nii")
    table = touch(tmp_path / "list.csv", csv_text.encode())
    with pytest.raises(MedtransError, match=message):
        cohort_subjects(table, ("image",), "a", "mr")


def test_unpaired_folder_without_scan_is_an_error(tmp_path):
    touch(tmp_path / "cohort" / "s1" / "notes.txt", b"not a scan")
    with pytest.raises(MedtransError, match="neither image"):
        cohort_subjects(tmp_path / "cohort", ("image",), "a", "mr")


def test_missing_folder(tmp_path):
    with pytest.raises(MedtransError, match="input folder not found"):
        find_cohort(DataConfig(paired=str(tmp_path / "nope")))

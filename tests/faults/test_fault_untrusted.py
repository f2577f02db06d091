"""Fault injection: untrusted files. Manifests whose paths point outside their folder, CSV inputs
with path-like subject names, and DICOM inputs carrying patient identifiers that must not leak
into outputs unless asked (crafted pickle checkpoints: test_fault_checkpoints.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakes import write_preprocessed
from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (assert_clean_error, assert_no_temp_files, ct_scan, infer_checkpoint, mr_scan, run_cli,
                      tiny_train_values, write_config)
from medtrans.io import Volume, write_dicom_series, write_volume

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]

IDENTITY = {"PatientName": "Doe^Jane", "PatientID": "MRN-0042-77", "PatientBirthDate": "19610923",
            "AccessionNumber": "ACC99812", "StudyID": "STUDY-4711", "ReferringPhysicianName": "House^Gregory"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return infer_checkpoint(tmp_path_factory.mktemp("checkpoint") / "best.pt")


# ---- preprocessed manifest ----------------------------------------------------------------------


@pytest.mark.parametrize("escape", ["relative", "absolute"])
def test_manifest_path_outside_the_preprocessed_folder_is_refused(escape: str, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    preprocessed = tmp_path / "runs" / "run" / "preprocessed"
    write_preprocessed(preprocessed, {f"p{i}": "paired" for i in range(5)}, "paired", shape=(40, 36, 12))
    victim = tmp_path / "elsewhere" / "secret.nii.gz"  # fits the cohort, so only a path check can stop it
    write_volume(Volume(np.zeros((40, 36, 12), np.float32), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3)), victim)
    manifest = json.loads((preprocessed / "manifest.json").read_text())
    escaping_path = str(victim) if escape == "absolute" else "../../../elsewhere/secret.nii.gz"
    manifest["subjects"][0]["images"]["mr"] = escaping_path
    (preprocessed / "manifest.json").write_text(json.dumps(manifest))
    config = write_config(tmp_path / "study.yaml", tiny_train_values(tmp_path, steps=2))
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", "manifest.json", "p0", "outside")
    assert sorted(p.name for p in victim.parent.iterdir()) == ["secret.nii.gz"], "wrote beside a file outside"


# ---- inference CSV manifest ---------------------------------------------------------------------


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("subject,image\n" + "".join(f"{s},{i}\n" for s, i in rows))
    return path


@pytest.mark.parametrize("subject", ["../escaped", "a/b", ".hidden", ""])
def test_csv_subject_that_is_not_a_plain_name_is_refused(subject: str, tmp_path: Path, checkpoint: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    write_volume(mr_scan(), tmp_path / "scans" / "mr.nii.gz")
    csv_path = write_csv(tmp_path / "scans" / "list.csv", [("ok", "mr.nii.gz"), (subject, "mr.nii.gz")])
    out = tmp_path / "out"
    result = run_cli(["infer", "--checkpoint", checkpoint, "--input", csv_path, "--output", out], capsys)
    assert_clean_error(result, "infer", "list.csv line 3", "not a plain name")
    assert not out.exists() and not (tmp_path / "escaped.nii.gz").exists()


def test_csv_row_with_a_missing_scan_names_the_line(tmp_path: Path, checkpoint: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    write_volume(mr_scan(), tmp_path / "scans" / "mr.nii.gz")
    csv_path = write_csv(tmp_path / "scans" / "list.csv", [("s1", "mr.nii.gz"), ("s2", "gone.nii.gz")])
    result = run_cli(["infer", "--checkpoint", checkpoint, "--input", csv_path, "--output", tmp_path / "out"], capsys)
    assert_clean_error(result, "infer", "list.csv line 3", "gone.nii.gz", "not found")
    assert not (tmp_path / "out").exists()


def test_two_scans_of_one_subject_are_refused(tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    write_volume(mr_scan(), tmp_path / "scans" / "s1.nii.gz")
    write_volume(mr_scan(seed=1), tmp_path / "scans" / "s1.mha")
    result = run_cli(["infer", "--checkpoint", checkpoint, "--input", tmp_path / "scans", "--output",
                      tmp_path / "out"], capsys)
    assert_clean_error(result, "infer", "two scans for subject 's1'")
    assert not (tmp_path / "out").exists()


def test_output_folder_inside_the_input_folder_is_refused(tmp_path: Path, checkpoint: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    write_volume(mr_scan(), tmp_path / "scans" / "s1.mha")
    for out in (tmp_path / "scans", tmp_path / "scans" / "results"):
        result = run_cli(["infer", "--checkpoint", checkpoint, "--input", tmp_path / "scans", "--output", out], capsys)
        assert_clean_error(result, "infer", "may not be the input folder")
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == ["s1.mha"]


# ---- patient identifiers ------------------------------------------------------------------------


def identifiers_in(folder: Path) -> list[str]:
    """Identity values found anywhere in the bytes of the files under ``folder``."""
    blob = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    return [value for value in IDENTITY.values() if value.encode() in blob]


@pytest.fixture
def identified_mr(tmp_path: Path) -> Path:
    scan = mr_scan()
    return write_dicom_series(scan.with_array(np.round(scan.array)), tmp_path / "mr_dicom", modality="MR",
                              identity=IDENTITY)


def test_dicom_output_carries_no_patient_identifiers_unless_asked(tmp_path: Path, identified_mr: Path,
                                                                  checkpoint: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    assert identifiers_in(identified_mr) == list(IDENTITY.values())
    argv = ["infer", "--checkpoint", checkpoint, "--input", identified_mr, "--device", "cpu", "--output"]
    anonymous, kept = tmp_path / "sct_anonymous", tmp_path / "sct_kept"
    assert run_cli([*argv, anonymous], capsys).code == 0
    assert identifiers_in(anonymous) == []
    assert run_cli([*argv, kept, "--keep-patient-tags"], capsys).code == 0
    assert identifiers_in(kept) == list(IDENTITY.values())
    nifti = tmp_path / "nifti"
    assert run_cli([*argv, nifti / "sct.nii.gz"], capsys).code == 0
    assert identifiers_in(nifti) == []


def test_info_never_prints_patient_identifiers(identified_mr: Path, capsys: pytest.CaptureFixture) -> None:
    for extra in ([], ["--json"]):
        result = run_cli(["info", identified_mr, *extra], capsys)
        assert result.code == 0
        assert not [value for value in IDENTITY.values() if value in result.out + result.err]


def test_evaluation_of_dicom_inputs_carries_no_patient_identifiers(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    write_dicom_series(ct_scan(), tmp_path / "target" / "s1", modality="CT", identity=IDENTITY)
    write_dicom_series(ct_scan(seed=1), tmp_path / "pred" / "s1", modality="CT", identity=IDENTITY)
    result = run_cli(["evaluate", "--pred", tmp_path / "pred", "--target", tmp_path / "target",
                      "--out", tmp_path / "eval", "--device", "cpu"], capsys)
    assert result.code == 0, result.err
    assert identifiers_in(tmp_path / "eval") == []
    assert not [value for value in IDENTITY.values() if value in result.out + result.err]
    assert_no_temp_files(tmp_path)

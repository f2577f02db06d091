"""Fault injection: bad subjects, bad locations and interruptions in `medtrans preprocess`.

One cohort holds one subject per fault (named after it) and is preprocessed once, in a child
process. A bad subject does not stop the cohort: it is recorded as ``failed`` (unreadable input)
or ``flagged`` (a pair that does not match) with a reason naming the file and the problem, listed
loudly on stderr, and left out of training; the command exits 1 when a subject failed.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (Child, assert_clean_error, assert_interrupted, assert_no_temp_files, run_cli, write_config)
from medtrans.data import usable_records
from medtrans.io import Volume, read_volume, write_dicom_series, write_volume

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]

# Coarse grid and a short registration: seconds per subject.
FAST_PREPROCESS = {"spacing_mm": [6.0, 6.0, 6.0], "registration_iterations": 30}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six tiny paired head phantoms (MR + CT of each head, on different grids)."""
    from medtrans.phantoms import write_cohorts

    root = tmp_path_factory.mktemp("phantoms")
    write_cohorts(root, n_paired=6, n_unpaired=0, size="tiny", seed=3, n_dicom=0)
    return root / "paired"


def copy_pair(phantoms: Path, source: str, folder: Path) -> tuple[Volume, Volume]:
    """Copy phantom ``source``'s mr/ct into ``folder``; return both volumes."""
    folder.mkdir(parents=True)
    for role in ("mr", "ct"):
        shutil.copy(phantoms / source / f"{role}.nii.gz", folder / f"{role}.nii.gz")
    return read_volume(folder / "mr.nii.gz"), read_volume(folder / "ct.nii.gz")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def as_dicom_pair(folder: Path, mr: Volume, ct: Volume, mr_patient: str, ct_patient: str) -> None:
    """Replace the NIfTI pair in ``folder`` by DICOM folders mr/ and ct/ with the given PatientIDs."""
    for role in ("mr", "ct"):
        (folder / f"{role}.nii.gz").unlink()
    write_dicom_series(mr.with_array(np.round(mr.array)), folder / "mr", modality="MR",
                       identity={"PatientID": mr_patient, "PatientName": f"{mr_patient}^Test"})
    write_dicom_series(ct, folder / "ct", modality="CT", identity={"PatientID": ct_patient,
                                                                   "PatientName": f"{ct_patient}^Test"})


def build_faulty_cohort(phantoms: Path, root: Path) -> None:
    """One subject folder per fault, named after it (plus one good pair)."""
    copy_pair(phantoms, "p01", root / "good")

    copy_pair(phantoms, "p01", root / "truncated_ct")
    truncate(root / "truncated_ct" / "ct.nii.gz")

    copy_pair(phantoms, "p01", root / "empty_mr")
    (root / "empty_mr" / "mr.nii.gz").write_bytes(b"")

    mr, _ = copy_pair(phantoms, "p01", root / "nan_mr")
    values = mr.array.astype(np.float32)
    values[10, 10, 10] = np.nan
    write_volume(mr.with_array(values), root / "nan_mr" / "mr.nii.gz")

    _, ct = copy_pair(phantoms, "p01", root / "ct_4d")
    nib.save(nib.Nifti1Image(np.stack([ct.array, ct.array], axis=-1), ct.affine_ras), root / "ct_4d" / "ct.nii.gz")

    _, ct = copy_pair(phantoms, "p01", root / "zero_spacing_ct")
    img = nib.Nifti1Image(ct.array, None)
    img.set_sform(np.diag([4.0, 0.0, 5.0, 1.0]), 2)
    img.set_qform(None, 0)
    nib.save(img, root / "zero_spacing_ct" / "ct.nii.gz")

    # Raw detector values 0..4095: the rescale slope/intercept was never applied.
    _, ct = copy_pair(phantoms, "p02", root / "ct_not_in_hu")
    raw = np.clip(ct.array.astype(np.int32) + 1024, 0, 4095).astype(np.int16)
    write_volume(ct.with_array(raw), root / "ct_not_in_hu" / "ct.nii.gz")

    # The MR of another, smaller head (a child's scan filed with an adult's CT).
    copy_pair(phantoms, "p03", root / "different_subjects")
    other_mr = read_volume(phantoms / "p04" / "mr.nii.gz")
    smaller = Volume(other_mr.array, tuple(0.7 * s for s in other_mr.spacing_mm), other_mr.origin_mm,
                     other_mr.direction)
    write_volume(smaller, root / "different_subjects" / "mr.nii.gz")

    # DICOM MR and CT of two different patients (same-looking heads: only the tags tell).
    mr, _ = copy_pair(phantoms, "p05", root / "different_patients_dicom")
    _, ct = read_volume(phantoms / "p06" / "mr.nii.gz"), read_volume(phantoms / "p06" / "ct.nii.gz")
    as_dicom_pair(root / "different_patients_dicom", mr, ct, "PAT-0001", "PAT-0002")

    mr, ct = copy_pair(phantoms, "p05", root / "mixed_series_dicom")
    as_dicom_pair(root / "mixed_series_dicom", mr, ct, "PAT-0003", "PAT-0003")
    write_dicom_series(mr.with_array(np.round(mr.array)), root / "extra", modality="MR")
    for path in (root / "extra").iterdir():
        path.rename(root / "mixed_series_dicom" / "mr" / f"localizer_{path.name}")
    (root / "extra").rmdir()

    mr, ct = copy_pair(phantoms, "p05", root / "missing_slice_dicom")
    as_dicom_pair(root / "missing_slice_dicom", mr, ct, "PAT-0004", "PAT-0004")
    slices = sorted((root / "missing_slice_dicom" / "ct").iterdir())
    slices[len(slices) // 2].unlink()


def study_values(cohort: Path, out_root: Path, name: str = "faults", **preprocess: object) -> dict:
    return {"name": name, "seed": 0, "output_root": str(out_root), "data": {"paired": str(cohort)},
            "preprocess": {**FAST_PREPROCESS, **preprocess}}


@pytest.fixture(scope="module")
def faulty_run(phantoms: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Child, int, dict]:
    """The faulty cohort preprocessed once by `python -m medtrans preprocess` (child, exit code, records)."""
    root = tmp_path_factory.mktemp("faulty")
    build_faulty_cohort(phantoms, root / "cohort")
    config = write_config(root / "study.yaml", study_values(root / "cohort", root / "runs"))
    child = Child(["preprocess", config, "--no-progress"], root / "child")
    code = child.wait()
    manifest = json.loads((root / "runs" / "faults" / "preprocessed" / "manifest.json").read_text())
    assert_no_temp_files(root)
    return child, code, {r["subject"]: r for r in manifest["subjects"]}


# fault -> (status, words the reason must hold)
SUBJECT_FAULTS = {
    "truncated_ct": ("failed", ("ct.nii.gz", "corrupt or truncated")),
    "empty_mr": ("failed", ("mr.nii.gz", "file is empty")),
    "nan_mr": ("failed", ("mr.nii.gz", "1 voxel(s) are NaN or Inf")),
    "ct_4d": ("failed", ("ct.nii.gz", "expected a 3D volume, got 4D")),
    "zero_spacing_ct": ("failed", ("ct.nii.gz", "spacing must be positive")),
    "different_subjects": ("flagged", ("body-mask Dice after registration", "wrong MR for this CT")),
    "mixed_series_dicom": ("failed", ("mixed_series_dicom/mr", "holds 2 DICOM series")),
    "missing_slice_dicom": ("failed", ("uneven slice spacing", "a slice is missing")),
    "ct_not_in_hu": ("failed", ("ct.nii.gz", "does not look like a CT in HU")),
    "different_patients_dicom": ("flagged", ("different PatientIDs",)),
}


def test_cohort_with_bad_subjects_keeps_the_good_one_and_exits_1(faulty_run: tuple[Child, int, dict]) -> None:
    child, code, records = faulty_run
    assert code == 1, child.stderr[-3000:]
    assert "Traceback" not in child.stderr
    assert records["good"]["status"] == "ok"
    usable = {r["subject"] for r in usable_records({"subjects": list(records.values())})}
    assert "good" in usable and not usable & set(SUBJECT_FAULTS)
    failed = sorted(s for s, (status, _) in SUBJECT_FAULTS.items() if status == "failed")
    assert f"{len(failed)} subject(s) failed and left out of training: {', '.join(failed)}" in child.stderr


@pytest.mark.parametrize("fault", SUBJECT_FAULTS)
def test_bad_subject_is_recorded_and_listed_loudly(fault: str, faulty_run: tuple[Child, int, dict]) -> None:
    child, _, records = faulty_run
    status, words = SUBJECT_FAULTS[fault]
    record = records[fault]
    assert record["status"] == status, record
    for word in words:
        assert word in record["reason"], record["reason"]
    assert f"preprocess: {fault} {status.upper()}" in child.stderr


def test_reasons_and_logs_carry_no_patient_identifiers(faulty_run: tuple[Child, int, dict]) -> None:
    child, _, records = faulty_run
    text = json.dumps(records) + child.stderr + child.stdout
    assert "PAT-0001" not in text and "^Test" not in text


def test_missing_input_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "study.yaml", study_values(tmp_path / "nowhere", tmp_path / "runs"))
    result = run_cli(["preprocess", config], capsys)
    assert_clean_error(result, "preprocess", "nowhere", "input folder not found")
    assert not (tmp_path / "runs").exists()


def test_subject_without_a_ct_is_named(phantoms: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy_pair(phantoms, "p01", tmp_path / "cohort" / "s1")
    (tmp_path / "cohort" / "s1" / "ct.nii.gz").unlink()
    config = write_config(tmp_path / "study.yaml", study_values(tmp_path / "cohort", tmp_path / "runs"))
    result = run_cli(["preprocess", config], capsys)
    assert_clean_error(result, "preprocess", "cohort/s1", "no ct scan")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_output_folder_in_the_input_folder_is_refused(where: str, phantoms: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    cohort = tmp_path / "cohort"
    copy_pair(phantoms, "p01", cohort / "s1")
    config = write_config(tmp_path / "study.yaml", study_values(cohort, tmp_path / "runs"))
    out = cohort if where == "equal" else cohort / "preprocessed"
    result = run_cli(["preprocess", config, "--out", out], capsys)
    assert_clean_error(result, "preprocess", str(cohort), "is inside the input folder")
    assert sorted(p.name for p in cohort.iterdir()) == ["s1"]


# ---- interruptions -------------------------------------------------------------------------------

N_GOOD = 6


@pytest.fixture
def good_cohort(phantoms: Path, tmp_path: Path) -> Path:
    for index in range(N_GOOD):
        copy_pair(phantoms, f"p{index + 1:02d}", tmp_path / "cohort" / f"s{index + 1}")
    return tmp_path / "cohort"


def finished_subjects(out: Path) -> list[str]:
    return sorted(p.parent.name for p in out.glob("*/record.json"))


def assert_records_vouch_for_complete_outputs(out: Path) -> None:
    """Each record's files read back as volumes; folders without a record are simply redone."""
    for record_file in out.glob("*/record.json"):
        record = json.loads(record_file.read_text())
        for rel in [*record["images"].values(), record["mask"], record["mr_on_ct"]]:
            read_volume(out / rel)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl_c", "sigkill"])
def test_interrupted_preprocessing_resumes_without_trusting_partial_subjects(sig: int, good_cohort: Path,
                                                                             tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "study.yaml",
                          study_values(good_cohort, tmp_path / "runs", register="none"))
    out = tmp_path / "runs" / "faults" / "preprocessed"
    child = Child(["preprocess", config], tmp_path / "child", pace=("medtrans.preprocess.stage.process", 0.5))
    child.wait_until(lambda: len(finished_subjects(out)) >= 1 and "preprocess:" in child.stderr,
                     "the first finished subject and the progress bar")
    code = child.send(sig)
    if sig == signal.SIGINT:
        assert_interrupted(code, child, "preprocess")
        assert_no_temp_files(tmp_path)
    else:
        assert code == -signal.SIGKILL
    finished = finished_subjects(out)
    assert 1 <= len(finished) < N_GOOD, finished
    assert_records_vouch_for_complete_outputs(out)

    result = run_cli(["preprocess", config, "--no-progress"], capsys)
    assert result.code == 0, result.err
    assert f"{N_GOOD} ok, 0 flagged, 0 failed ({len(finished)} unchanged)" in result.out
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(r["subject"] for r in usable_records(manifest)) == [f"s{i + 1}" for i in range(N_GOOD)]
    assert_records_vouch_for_complete_outputs(out)
    assert_no_temp_files(out)


def test_interrupted_rerun_with_new_settings_leaves_no_stale_manifest(good_cohort: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from medtrans.config import config_from_dict
    from medtrans.preprocess import stage

    out = tmp_path / "preprocessed"
    first = config_from_dict(study_values(good_cohort, tmp_path / "runs", register="none"))
    stage.run_preprocess(first, out, progress=False)
    real_process = stage.process
    calls = {"n": 0}

    def interrupted_on_third(job: stage.Job) -> stage.Outcome:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_process(job)

    monkeypatch.setattr(stage, "process", interrupted_on_third)
    second = config_from_dict(study_values(good_cohort, tmp_path / "runs", register="none", spacing_mm=[5.0, 5.0, 5.0]))
    with pytest.raises(KeyboardInterrupt):
        stage.run_preprocess(second, out, progress=False)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        for record in manifest["subjects"]:
            assert json.loads((out / record["subject"] / "record.json").read_text()) == record, record["subject"]

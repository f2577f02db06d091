"""Fault injection: the disk fills up (or refuses writes) while a stage writes its output.

The low-level writer is patched to fail the way it does on a full disk: SimpleITK's NIfTI writer
prints a short write and returns normally, its MetaImage/NRRD writers raise RuntimeError, Python
writes raise ``OSError(ENOSPC)`` without a file name. Each case checks the one-line error naming
the output, exit code 2, that the previous output is untouched, and that no temporary file is left.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pydicom
import pytest
import SimpleITK as sitk

from fakes import write_preprocessed
from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (assert_clean_error, assert_debug_shows_traceback, assert_no_temp_files, ct_scan, files_under,
                      infer_checkpoint, mr_scan, run_cli, tiny_train_values, write_config)
from medtrans.io import read_volume, write_dicom_series, write_volume
from medtrans.train import load_checkpoint

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]

REAL_WRITE_IMAGE = sitk.WriteImage


def enospc() -> OSError:
    """What ``write()`` raises on a full disk: no file name attached."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return infer_checkpoint(tmp_path_factory.mktemp("checkpoint") / "best.pt")


def infer_argv(checkpoint: Path, source: Path, out: Path) -> list:
    return ["infer", "--checkpoint", checkpoint, "--input", source, "--output", out, "--device", "cpu"]


def test_disk_full_while_writing_nifti_keeps_the_previous_output(tmp_path: Path, checkpoint: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    out = tmp_path / "out" / "sct.nii.gz"
    assert run_cli(infer_argv(checkpoint, scan, out), capsys).code == 0
    previous = out.read_bytes()

    def short_write(image: sitk.Image, path: str, *args, **kwargs) -> None:
        REAL_WRITE_IMAGE(image, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])  # NWAD: "wrote only N of M bytes", no exception

    monkeypatch.setattr(sitk, "WriteImage", short_write)
    result = run_cli(infer_argv(checkpoint, scan, out), capsys)
    assert_clean_error(result, "infer", str(out), "disk full", "completed outputs are kept")
    assert out.read_bytes() == previous
    assert_no_temp_files(tmp_path)


def test_disk_full_while_writing_metaimage_leaves_no_output(tmp_path: Path, checkpoint: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture) -> None:
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    out = tmp_path / "out" / "sct.mha"

    def failing_write(image: sitk.Image, path: str, *args, **kwargs) -> None:
        Path(path).write_bytes(b"ObjectType = Image\n")  # the header got out, the voxels did not
        raise RuntimeError("Exception thrown in SimpleITK WriteImage: ...\nReason: No space left on device")

    monkeypatch.setattr(sitk, "WriteImage", failing_write)
    result = run_cli(infer_argv(checkpoint, scan, out), capsys)
    assert_clean_error(result, "infer", str(out), "cannot write the volume", "No space left on device")
    assert not out.exists()
    assert_no_temp_files(tmp_path)
    assert_debug_shows_traceback(infer_argv(checkpoint, scan, out), capsys, "infer")


def test_disk_full_while_writing_a_dicom_series_keeps_the_previous_series(tmp_path: Path, checkpoint: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    out = tmp_path / "out" / "sct_dicom"
    assert run_cli(infer_argv(checkpoint, scan, out), capsys).code == 0
    previous = files_under(out)
    real_save_as = pydicom.dataset.Dataset.save_as
    calls = {"n": 0}

    def save_as_until_full(self, filename, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            Path(filename).write_bytes(b"\0" * 128 + b"DICM")
            raise enospc()
        return real_save_as(self, filename, *args, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", save_as_until_full)
    result = run_cli(infer_argv(checkpoint, scan, out), capsys)
    assert_clean_error(result, "infer", str(out), "No space left on device")
    assert files_under(out) == previous
    assert read_volume(out).shape == mr_scan().shape
    assert_no_temp_files(tmp_path)


def test_disk_full_while_writing_a_checkpoint_keeps_the_last_good_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture) -> None:
    write_preprocessed(tmp_path / "runs" / "run" / "preprocessed", {f"p{i}": "paired" for i in range(5)}, "paired",
                       shape=(40, 36, 12))
    config = write_config(tmp_path / "study.yaml", tiny_train_values(tmp_path))
    last = tmp_path / "runs" / "run" / "checkpoints" / "last.pt"
    real_write_bytes = Path.write_bytes
    last_writes = {"n": 0}

    def write_bytes_until_full(self: Path, data) -> int:
        if self.name.endswith("-last.pt"):
            last_writes["n"] += 1
            if last_writes["n"] == 2:  # the step-6 save; the step-3 one went through
                real_write_bytes(self, bytes(data)[: len(data) // 2])
                raise enospc()
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes_until_full)
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", str(last), "No space left on device")
    assert load_checkpoint(last)["step"] == 3
    assert_no_temp_files(tmp_path)

    monkeypatch.undo()
    resumed = run_cli(["train", config, "--resume"], capsys)
    assert resumed.code == 0, resumed.err
    assert load_checkpoint(last)["step"] == 6


def test_disk_full_while_writing_the_evaluation_keeps_the_previous_summary(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture) -> None:
    for folder in ("pred", "target"):
        write_volume(ct_scan(), tmp_path / folder / "s1.nii.gz")
    argv = ["evaluate", "--pred", tmp_path / "pred", "--target", tmp_path / "target", "--out", tmp_path / "eval",
            "--device", "cpu"]
    assert run_cli(argv, capsys).code == 0
    summary = tmp_path / "eval" / "summary.json"
    previous = summary.read_bytes()
    real_write_text = Path.write_text

    def write_text_until_full(self: Path, text: str, *args, **kwargs) -> int:
        if self.name.endswith("-summary.json"):
            real_write_text(self, text[: len(text) // 2])
            raise enospc()
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text_until_full)
    result = run_cli(argv, capsys)
    assert_clean_error(result, "evaluate", str(summary), "No space left on device")
    assert summary.read_bytes() == previous
    assert_no_temp_files(tmp_path)


def test_permission_denied_on_the_output_folder_is_one_line(tmp_path: Path, checkpoint: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    locked = tmp_path / "locked"
    real_mkdir = Path.mkdir

    def refusing_mkdir(self: Path, *args, **kwargs) -> None:
        if self == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refusing_mkdir)
    result = run_cli(infer_argv(checkpoint, scan, locked / "sct.nii.gz"), capsys)
    assert_clean_error(result, "infer", str(locked), "Permission denied")
    assert not locked.exists()


def test_written_dicom_series_survives_a_full_disk_at_any_slice(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Library level: whichever slice fails, the folder holds the old series or none, never a mix."""
    real_save_as = pydicom.dataset.Dataset.save_as
    for failing_slice in (1, 6, 12):
        out = tmp_path / f"fails_at_{failing_slice}"
        calls = {"n": 0}

        def save_as_until_full(self, filename, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == failing_slice:
                raise enospc()
            return real_save_as(self, filename, *args, **kwargs)

        monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", save_as_until_full)
        with pytest.raises(OSError) as err:
            write_dicom_series(ct_scan(), out, modality="CT")
        assert err.value.errno == errno.ENOSPC and err.value.filename == str(out)
        assert not out.exists()
    assert_no_temp_files(tmp_path)

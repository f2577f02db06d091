"""Fault injection: `medtrans report` and the whole study (`medtrans run`) interrupted or out of disk."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

import medtrans.report as report_module
from fakes import write_preprocessed
from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (Child, assert_clean_error, assert_interrupted, assert_no_temp_files, run_cli,
                      tiny_train_values, write_config)
from medtrans.cli import main
from medtrans.train import load_checkpoint

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]


@pytest.fixture(scope="module")
def reported_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run folder with its report.html (the tests leave both unchanged)."""
    root = tmp_path_factory.mktemp("reported")
    write_preprocessed(root / "runs" / "run" / "preprocessed", {f"p{i}": "paired" for i in range(5)}, "paired",
                       shape=(40, 36, 12))
    config = write_config(root / "study.yaml", tiny_train_values(root, steps=2))
    assert main(["train", str(config)]) == 0
    run_dir = root / "runs" / "run"
    assert main(["report", str(run_dir)]) == 0
    return run_dir


def test_ctrl_c_while_building_the_report_keeps_the_previous_one(reported_run: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    previous = (reported_run / "report.html").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "render_report", interrupted)
    result = run_cli(["report", reported_run], capsys)
    assert result.code == 130
    assert "medtrans report: interrupted; completed outputs are kept, rerun to resume" in result.err
    assert (reported_run / "report.html").read_bytes() == previous
    assert_no_temp_files(reported_run)


def test_disk_full_while_writing_the_report_keeps_the_previous_one(reported_run: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    report = reported_run / "report.html"
    previous = report.read_bytes()
    real_write_text = Path.write_text

    def write_text_until_full(self: Path, text: str, *args, **kwargs) -> int:
        if self.name.endswith("-report.html"):
            real_write_text(self, text[:1000])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text_until_full)
    result = run_cli(["report", reported_run], capsys)
    assert_clean_error(result, "report", str(report), "No space left on device")
    assert report.read_bytes() == previous
    assert_no_temp_files(reported_run)


@pytest.mark.slow
def test_ctrl_c_during_a_study_then_rerun_completes_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`medtrans run` stopped during training resumes there: preprocessing is not redone, training
    continues from last.pt, and the later stages complete."""
    from medtrans.phantoms import write_cohorts

    write_cohorts(tmp_path / "data", n_paired=6, n_unpaired=0, size="tiny", seed=5, n_dicom=0)
    values = tiny_train_values(tmp_path, name="study", steps=2000, checkpoint_every=2, val_every=1000)
    values["data"] = {"paired": str(tmp_path / "data" / "paired")}
    values["preprocess"] = {"spacing_mm": [6.0, 6.0, 6.0], "register": "none", "pad_multiple": 8}
    values["dataset"]["split"] = {"train": 0.5, "val": 0.25, "test": 0.25}
    config = write_config(tmp_path / "study.yaml", values)
    run_dir = tmp_path / "runs" / "study"
    last = run_dir / "checkpoints" / "last.pt"
    child = Child(["run", config], tmp_path / "child")
    child.wait_until(lambda: last.is_file(), "the first training checkpoint")
    assert_interrupted(child.interrupt(), child, "run")
    stages = json.loads((run_dir / "stages.json").read_text())
    assert stages["preprocess"]["done"] and not stages["train"]["done"]
    step = load_checkpoint(last)["step"]
    assert_no_temp_files(tmp_path)

    values["train"]["steps"] = step + 2
    write_config(config, values)
    result = run_cli(["run", config], capsys)
    assert result.code == 0, result.err
    assert "preprocess: up to date, skipped" in result.out
    assert f"train: resuming at step {step}" in result.out
    assert load_checkpoint(last)["step"] == step + 2
    assert all(record["done"] for record in json.loads((run_dir / "stages.json").read_text()).values())
    assert (run_dir / "report.html").is_file() and (run_dir / "evaluation" / "summary.json").is_file()
    assert_no_temp_files(tmp_path)

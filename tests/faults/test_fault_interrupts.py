"""Fault injection: Ctrl-C (SIGINT) and SIGKILL while a stage runs.

Real signals go to `python -m medtrans ...` child processes once they show progress; the narrow
windows inside a write (a DICOM series half written, one scan of a batch) are hit in-process by
raising KeyboardInterrupt from the writer. After Ctrl-C: exit code 130, the interruption line, no
traceback, no temporary file, and every output present is complete. After SIGKILL: nothing a rerun
would trust is half written, and a resumed training run ends with the uninterrupted run's weights.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from fakes import write_preprocessed
from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (Child, assert_interrupted, assert_no_temp_files, ct_scan, files_under, infer_checkpoint,
                      mr_scan, readable_volumes_only, run_cli, tiny_train_values, write_config)
from medtrans.config import config_from_dict, resolve_paths
from medtrans.evaluate.stage import list_subjects
from medtrans.infer import batch as infer_batch
from medtrans.infer import plan_jobs
from medtrans.io import write_volume
from medtrans.train import load_checkpoint, train

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]

N_SCANS = 16


def fake_cohort(run_dir: Path) -> None:
    write_preprocessed(run_dir / "preprocessed", {f"p{i}": "paired" for i in range(5)}, "paired", shape=(40, 36, 12))


def checkpoint_step(path: Path) -> int:
    """Step of a checkpoint, or -1 while it does not exist yet."""
    return load_checkpoint(path)["step"] if path.is_file() else -1


def network_and_optimizer_state(path: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(path)
    flat = {f"net.{n}.{k}": v for n, sd in payload["networks"].items() for k, v in sd.items()}
    for name, opt in payload["optimizers"].items():
        for index, state in opt["state"].items():
            flat.update({f"opt.{name}.{index}.{k}": v for k, v in state.items() if torch.is_tensor(v)})
    return flat


# ---- training -----------------------------------------------------------------------------------


def test_ctrl_c_during_training_saves_last_pt_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = tiny_train_values(tmp_path, steps=2000, checkpoint_every=2, val_every=1000)
    fake_cohort(tmp_path / "runs" / "run")
    config = write_config(tmp_path / "study.yaml", values)
    last = tmp_path / "runs" / "run" / "checkpoints" / "last.pt"
    child = Child(["train", config], tmp_path / "child")
    child.wait_until(lambda: checkpoint_step(last) >= 2 and "train run:" in child.stderr,
                     "the first checkpoint and the progress bar")
    code = child.interrupt()
    assert_interrupted(code, child, "train")
    assert "Stopping after this step and saving a checkpoint" in child.stdout
    step = checkpoint_step(last)
    assert 2 <= step < 2000
    log_lines = (last.parents[1] / "logs" / "metrics.csv").read_text().splitlines()[1:]
    logged = [int(line.split(",")[0]) for line in log_lines]
    assert logged == list(range(1, step + 1)), "every finished step is logged, none beyond the checkpoint"
    assert_no_temp_files(tmp_path)

    resumed = run_cli(["train", config, "--resume", "--steps", step + 2], capsys)
    assert resumed.code == 0, resumed.err
    assert checkpoint_step(last) == step + 2


def test_sigkill_during_training_then_resume_gives_the_uninterrupted_weights(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    steps = 60
    kill_after = random.randint(2, 20)
    schedule = {"steps": steps, "checkpoint_every": 2, "val_every": 20, "deterministic": True}
    full_values = tiny_train_values(tmp_path, name="full", **schedule)
    fake_cohort(tmp_path / "runs" / "full")
    train(resolve_paths(config_from_dict(full_values)))

    killed_values = tiny_train_values(tmp_path, name="killed", **schedule)
    fake_cohort(tmp_path / "runs" / "killed")
    config = write_config(tmp_path / "killed.yaml", killed_values)
    last = tmp_path / "runs" / "killed" / "checkpoints" / "last.pt"
    child = Child(["train", config], tmp_path / "child")
    child.wait_until(lambda: checkpoint_step(last) >= kill_after, f"a checkpoint at step {kill_after} or later")
    assert child.send(signal.SIGKILL) == -signal.SIGKILL
    killed_at = checkpoint_step(last)
    assert killed_at < steps, f"the run finished before it was killed (kill after step {kill_after})"

    resumed = run_cli(["train", config, "--resume"], capsys)
    assert resumed.code == 0, resumed.err
    expected = network_and_optimizer_state(tmp_path / "runs" / "full" / "checkpoints" / "last.pt")
    actual = network_and_optimizer_state(last)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0,
                                   msg=f"{key} differs after a kill at step {killed_at}")
    rows = (last.parents[1] / "logs" / "metrics.csv").read_text().splitlines()
    train_steps = [int(r.split(",")[0]) for r in rows[1:] if r.split(",")[1]]
    assert sorted(set(train_steps)) == list(range(1, steps + 1))


# ---- inference ----------------------------------------------------------------------------------


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    folder = tmp_path / "scans"
    for index in range(N_SCANS):
        write_volume(mr_scan(seed=index), folder / f"s{index:02d}.nii.gz")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return infer_checkpoint(tmp_path_factory.mktemp("checkpoint") / "best.pt")


def infer_argv(checkpoint: Path, source: Path, out: Path) -> list:
    return ["infer", "--checkpoint", checkpoint, "--input", source, "--output", out, "--device", "cpu"]


def visible_outputs(folder: Path) -> list[Path]:
    return [p for p in folder.glob("*.nii.gz") if not p.name.startswith(".")] if folder.is_dir() else []


def test_ctrl_c_during_inference_keeps_only_complete_outputs(tmp_path: Path, scans: Path, checkpoint: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    child = Child(infer_argv(checkpoint, scans, out), tmp_path / "child",
                  pace=("medtrans.infer.batch.translate_scan", 0.5))
    child.wait_until(lambda: len(visible_outputs(out)) >= 1 and "infer:" in child.stderr,
                     "the first output and the progress bar")
    code = child.interrupt()
    assert_interrupted(code, child, "infer")
    done = readable_volumes_only(out)
    assert 1 <= len(done) < N_SCANS
    assert_no_temp_files(tmp_path)

    assert run_cli(infer_argv(checkpoint, scans, out), capsys).code == 0
    assert len(readable_volumes_only(out)) == N_SCANS


def test_sigkill_during_inference_leaves_nothing_a_rerun_trusts(tmp_path: Path, scans: Path, checkpoint: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    child = Child(infer_argv(checkpoint, scans, out), tmp_path / "child",
                  pace=("medtrans.infer.batch.translate_scan", 0.5))
    child.wait_until(lambda: len(visible_outputs(out)) >= 2, "two outputs")
    assert child.send(signal.SIGKILL) == -signal.SIGKILL
    done = readable_volumes_only(out)
    assert 2 <= len(done) < N_SCANS
    # A kill inside a write leaves its hidden temporary file; plant one so the check is certain.
    stale = out / ".tmp-0badc0de-s99.nii.gz"
    stale.write_bytes((scans / "s00.nii.gz").read_bytes()[:100])
    assert [job.subject for job in plan_jobs(out, tmp_path / "again")] == [p[: -len(".nii.gz")] for p in done]
    assert ".tmp-0badc0de-s99" not in list_subjects(out, "prediction")

    assert run_cli(infer_argv(checkpoint, scans, out), capsys).code == 0
    assert len(readable_volumes_only(out)) == N_SCANS


def test_ctrl_c_between_scans_of_a_batch_keeps_the_finished_ones(tmp_path: Path, scans: Path, checkpoint: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture) -> None:
    real_translate = infer_batch.translate_scan
    calls = {"n": 0}

    def interrupted_on_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_translate(*args, **kwargs)

    monkeypatch.setattr(infer_batch, "translate_scan", interrupted_on_third)
    result = run_cli(infer_argv(checkpoint, scans, tmp_path / "out"), capsys)
    assert result.code == 130
    assert "medtrans infer: interrupted; completed outputs are kept, rerun to resume" in result.err
    assert readable_volumes_only(tmp_path / "out") == ["s00.nii.gz", "s01.nii.gz"]
    assert_no_temp_files(tmp_path)


def test_ctrl_c_while_writing_a_dicom_series_keeps_the_previous_series(tmp_path: Path, checkpoint: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    out = tmp_path / "sct_dicom"
    assert run_cli(infer_argv(checkpoint, scan, out), capsys).code == 0
    previous = files_under(out)
    real_save_as = pydicom.dataset.Dataset.save_as
    calls = {"n": 0}

    def interrupted_at_slice_5(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_save_as(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", interrupted_at_slice_5)
    result = run_cli(infer_argv(checkpoint, scan, out), capsys)
    assert result.code == 130 and "interrupted" in result.err
    assert files_under(out) == previous
    assert_no_temp_files(tmp_path)


# ---- evaluation ---------------------------------------------------------------------------------


def test_ctrl_c_during_evaluation_writes_no_metrics(tmp_path: Path) -> None:
    for index in range(N_SCANS):
        ct = ct_scan(shape=(40, 40, 24), seed=index)
        write_volume(ct, tmp_path / "target" / f"s{index:02d}.nii.gz")
        noisy = ct.array + np.random.default_rng(index).normal(0, 30, ct.shape).round().astype(np.int16)
        write_volume(ct.with_array(noisy), tmp_path / "pred" / f"s{index:02d}.nii.gz")
    out = tmp_path / "eval"
    child = Child(["evaluate", "--pred", tmp_path / "pred", "--target", tmp_path / "target", "--out", out,
                   "--device", "cpu"], tmp_path / "child", pace=("medtrans.evaluate.stage.evaluate_subject", 0.5))
    child.wait_until(lambda: f"/{N_SCANS}" in child.stderr and "evaluate:" in child.stderr, "the progress bar")
    code = child.interrupt()
    assert_interrupted(code, child, "evaluate")
    assert not (out / "metrics.csv").exists() and not (out / "summary.json").exists()
    assert_no_temp_files(tmp_path)

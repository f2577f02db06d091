"""Fault injection: checkpoints that are missing, truncated, foreign, of another architecture, or
crafted to run code when unpickled; given to `medtrans infer` and `medtrans train --resume`."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from fakes import write_preprocessed
from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import (INFER_UNET, assert_clean_error, assert_no_temp_files, files_under,
                      infer_checkpoint, mr_scan, run_cli, tiny_train_values, write_config)
from medtrans.io import write_volume
from medtrans.train import checkpoint as checkpoint_module

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]


class RunsCode:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def crafted_pickle(path: Path, marker: Path) -> Path:
    """A checkpoint that looks like medtrans' but carries an object whose unpickling runs code."""
    torch.save({"format": "medtrans-checkpoint", "version": 1, "step": 3, "exploit": RunsCode(marker)}, path)
    return path


def raw_pickle(path: Path, marker: Path) -> Path:
    """A plain pickle stream (not a torch zip file) with the same payload."""
    path.write_bytes(pickle.dumps(RunsCode(marker)))
    return path


def other_architecture(path: Path, marker: Path) -> Path:
    """Weights of a U-Net with 8 base filters under network_args that say 4."""
    payload = torch.load(infer_checkpoint(path), weights_only=True)
    from medtrans.models import build_network

    payload["networks"]["G"] = build_network({**INFER_UNET, "ngf": 8}).state_dict()
    torch.save(payload, path)
    return path


def truncated(path: Path, marker: Path) -> Path:
    data = infer_checkpoint(path).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def foreign_state_dict(path: Path, marker: Path) -> Path:
    """A bare state_dict, as many other projects save."""
    from medtrans.models import build_network

    torch.save(build_network(INFER_UNET).state_dict(), path)
    return path


def missing(path: Path, marker: Path) -> Path:
    return path


CHECKPOINT_FAULTS = {
    "crafted_pickle_checkpoint": (crafted_pickle, "refused to load"),
    "raw_pickle_checkpoint": (raw_pickle, "refused to load"),
    "checkpoint_of_another_architecture": (other_architecture, "weights do not fit the stored architecture"),
    "truncated_checkpoint": (truncated, "not a readable checkpoint"),
    "foreign_state_dict_checkpoint": (foreign_state_dict, "not a medtrans checkpoint"),
    "missing_checkpoint": (missing, "checkpoint not found"),
}


@pytest.mark.parametrize("fault", CHECKPOINT_FAULTS)
def test_infer_refuses_the_checkpoint(fault: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    build, words = CHECKPOINT_FAULTS[fault]
    marker = tmp_path / "code_was_run"
    checkpoint = build(tmp_path / "best.pt", marker)
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    out = tmp_path / "out" / "sct.nii.gz"
    result = run_cli(["infer", "--checkpoint", checkpoint, "--input", scan, "--output", out, "--device", "cpu"], capsys)
    assert_clean_error(result, "infer", "best.pt", words)
    assert not marker.exists(), "unpickling ran code"
    assert not out.parent.exists()
    assert_no_temp_files(tmp_path)


def test_checkpoints_are_loaded_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, "load", spy)
    checkpoint_module.load_checkpoint(infer_checkpoint(tmp_path / "best.pt"))
    assert calls == [True]


@pytest.fixture
def trained_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    """A 3-step tiny run (its config file); its last.pt is then replaced by each fault."""
    values = tiny_train_values(tmp_path, steps=3)
    write_preprocessed(tmp_path / "runs" / "run" / "preprocessed", {f"p{i}": "paired" for i in range(5)}, "paired",
                       shape=(40, 36, 12))
    config = write_config(tmp_path / "study.yaml", values)
    assert run_cli(["train", config], capsys).code == 0
    return config


RESUME_FAULTS = {
    "crafted_pickle_checkpoint": (crafted_pickle, "refused to load"),
    "checkpoint_of_another_architecture": (None, "checkpoint networks differ from the config's"),
    "truncated_checkpoint": (None, "not a readable checkpoint"),
}


@pytest.mark.parametrize("fault", RESUME_FAULTS)
def test_train_resume_refuses_the_checkpoint(fault: str, trained_run: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    last = tmp_path / "runs" / "run" / "checkpoints" / "last.pt"
    marker = tmp_path / "code_was_run"
    if fault == "crafted_pickle_checkpoint":
        crafted_pickle(last, marker)
    elif fault == "truncated_checkpoint":
        last.write_bytes(last.read_bytes()[:1000])
    else:
        payload = torch.load(last, weights_only=True)
        payload["network_args"]["G"] = {**payload["network_args"]["G"], "ngf": 16}
        torch.save(payload, last)
    before = files_under(tmp_path / "runs" / "run" / "checkpoints")
    result = run_cli(["train", trained_run, "--resume", "--steps", "6"], capsys)
    assert_clean_error(result, "train", "last.pt", RESUME_FAULTS[fault][1])
    assert not marker.exists()
    assert files_under(tmp_path / "runs" / "run" / "checkpoints") == before
    assert_no_temp_files(tmp_path)


def test_checkpoint_with_an_unknown_config_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A checkpoint whose stored config has a key this version does not know."""
    path = infer_checkpoint(tmp_path / "best.pt")
    payload = torch.load(path, weights_only=True)
    payload["config"]["train"]["warp_speed"] = 9
    torch.save(payload, path)
    scan = write_volume(mr_scan(), tmp_path / "mr.nii.gz")
    result = run_cli(["infer", "--checkpoint", path, "--input", scan, "--output", tmp_path / "sct.nii.gz"], capsys)
    assert_clean_error(result, "infer", "best.pt (stored config)", "unknown key train.warp_speed")
    assert not (tmp_path / "sct.nii.gz").exists()

"""`medtrans run`: a tiny study end to end, stage skipping, --from, resume on extension, CycleGAN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import ndimage

from medtrans.cli import main
from medtrans.io import read_volume
from medtrans.phantoms import write_cohorts
from medtrans.preprocess.masks import body_mask
from medtrans.train import load_checkpoint


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohorts")
    write_cohorts(root, n_paired=4, n_unpaired=4, size="tiny", seed=3, n_dicom=0)
    return root


def write_config(path: Path, cohorts: Path, **overrides: dict) -> Path:
    values = {
        "name": "study", "output_root": str(path.parent / "runs"),
        "data": {"paired": str(cohorts / "paired")},
        "preprocess": {"spacing_mm": [4.0, 4.0, 4.0], "min_body_dice": 0.5, "registration_iterations": 30},
        "dataset": {"kind": "2d", "split": {"train": 0.5, "val": 0.25, "test": 0.25}},
        "model": {"ngf": 8, "ndf": 8},
        "train": {"steps": 4, "batch_size": 2, "val_every": 2, "checkpoint_every": 2, "amp": "none"},
    }
    for section, changes in overrides.items():
        values[section] = {**values.get(section, {}), **changes} if isinstance(changes, dict) else changes
    path.write_text(yaml.safe_dump(values))
    return path


def run(capsys: pytest.CaptureFixture, *args: str) -> str:
    code = main(["run", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def skipped(out: str) -> set[str]:
    return {line.split()[1].rstrip(":") for line in out.splitlines() if "up to date" in line}


def test_tiny_pix2pix_study_end_to_end_skips_and_reruns(tmp_path: Path, cohorts: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "study.yaml", cohorts)
    out = run(capsys, str(config))
    run_dir = tmp_path / "runs" / "study"
    assert f"Report: {run_dir / 'report.html'}" in out
    test_subjects = json.loads((run_dir / "split.json").read_text())["test"]
    assert sorted(p.name for p in (run_dir / "predictions").iterdir()) == [f"{s}.nii.gz" for s in test_subjects]
    metrics = (run_dir / "evaluation" / "metrics.csv").read_text().splitlines()
    assert metrics[0].startswith("subject,mae,psnr,ssim") and len(metrics) == 1 + len(test_subjects)
    assert (run_dir / "evaluation" / "baseline" / "summary.json").is_file()
    assert "data:image/png;base64," in (run_dir / "report.html").read_text()

    assert skipped(run(capsys, str(config))) == {"preprocess", "train", "infer", "evaluate"}

    before = (run_dir / "predictions" / f"{test_subjects[0]}.nii.gz").stat().st_mtime_ns
    assert skipped(run(capsys, str(config), "--from", "infer")) == {"preprocess", "train"}
    assert (run_dir / "predictions" / f"{test_subjects[0]}.nii.gz").stat().st_mtime_ns > before

    extended = write_config(tmp_path / "study.yaml", cohorts, train={"steps": 6, "batch_size": 2, "val_every": 2,
                                                                      "checkpoint_every": 2, "amp": "none"})
    out = run(capsys, str(extended))
    assert "train: resuming at step 4" in out and "infer: running" in out
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 6

    changed = write_config(tmp_path / "study.yaml", cohorts, train={"steps": 6, "batch_size": 2, "lr": 0.001,
                                                                     "amp": "none"})
    assert main(["run", str(changed)]) == 2
    assert "--from train" in capsys.readouterr().err
    out = run(capsys, str(changed), "--from", "train")
    assert "train: starting" in out


def test_tiny_cyclegan_study_on_unpaired_cohorts(tmp_path: Path, cohorts: Path, capsys: pytest.CaptureFixture) -> None:
    config = write_config(tmp_path / "cg.yaml", cohorts,
                          data={"domain_a": str(cohorts / "unpaired" / "healthy"),
                                "domain_b": str(cohorts / "unpaired" / "pathology"), "modality_b": "mr"},
                          preprocess={"spacing_mm": [4.0, 4.0, 4.0], "register": "none"},
                          train={"recipe": "cyclegan", "steps": 4, "batch_size": 1, "val_every": 2,
                                 "checkpoint_every": 2, "amp": "none"})
    data = yaml.safe_load(config.read_text())
    data["data"].pop("paired")
    config.write_text(yaml.safe_dump(data))
    run(capsys, str(config))
    run_dir = tmp_path / "runs" / "study"
    summary = json.loads((run_dir / "evaluation" / "summary.json").read_text())
    assert summary
    assert list((run_dir / "predictions").glob("*.nii.gz"))


def test_trained_checkpoint_makes_a_plausible_ct(tmp_path: Path, cohorts: Path, capsys: pytest.CaptureFixture) -> None:
    """A checkpoint trained on the sample phantoms turns a test MR into a CT: air, soft tissue and bone in place."""
    config = write_config(tmp_path / "study.yaml", cohorts,
                          train={"steps": 300, "batch_size": 4, "lr": 0.001, "val_every": 300, "checkpoint_every": 300,
                                 "amp": "none"})
    assert main(["preprocess", str(config)]) == 0 and main(["train", str(config)]) == 0
    run_dir = tmp_path / "runs" / "study"
    subject = json.loads((run_dir / "split.json").read_text())["test"][0]
    mr_path = cohorts / "paired" / subject / "mr.nii.gz"
    assert main(["infer", "--checkpoint", str(run_dir / "checkpoints" / "best.pt"), "--input", str(mr_path),
                 "--output", str(tmp_path / "sct.nii.gz")]) == 0
    mr, sct = read_volume(mr_path), read_volume(tmp_path / "sct.nii.gz")
    assert sct.same_grid(mr) and sct.array.dtype == np.int16
    hu, body = sct.array, body_mask(mr, "mr")
    assert (hu[~ndimage.binary_dilation(body, iterations=2)] == -1000).all()  # air outside the head
    assert hu.min() == -1000 and 700 < hu.max() < 3071
    # Bone where the MR is dark inside the head (the skull), soft tissue where it is bright (brain, fat).
    dark = body & (mr.array < np.percentile(mr.array[body], 15))
    bright = body & (mr.array > np.percentile(mr.array[body], 60))
    assert np.mean(hu[dark] > 300) > 0.4 and np.mean(hu[bright] > 300) < 0.2
    assert -150 < np.median(hu[bright]) < 150

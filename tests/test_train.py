"""Training engine and recipes: loss goes down, exact resume, NaN stop, checkpoints, torchrun DDP."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from fakes import write_preprocessed
from medtrans.config import config_from_dict, resolve_paths
from medtrans.errors import MedtransError
from medtrans.train import Trainer, TrainingDiverged, load_checkpoint, train
from medtrans.train.checkpoint import FORMAT

TINY_MODEL = {"ngf": 8, "ndf": 8, "dropout": 0.0}


def make_config(tmp_path: Path, recipe: str = "pix2pix", name: str = "run", **train: object):
    data = {"paired": "in"} if recipe == "pix2pix" else {"domain_a": "a", "domain_b": "b", "modality_b": "ct"}
    values = {
        "name": name, "seed": 1, "output_root": str(tmp_path / "runs"), "data": data,
        "dataset": {"kind": "2d", "augment": False, "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": TINY_MODEL,
        "train": {"recipe": recipe, "steps": 6, "batch_size": 2, "val_every": 3, "checkpoint_every": 3,
                  "log_every": 1, "device": "cpu", "amp": "none", **train},
    }
    return resolve_paths(config_from_dict(values), base=tmp_path), values


def preprocess_fake(cfg, mode: str = "paired") -> None:
    subjects = {f"p{i}": "paired" for i in range(5)} if mode == "paired" else {
        **{f"a{i}": "a" for i in range(5)}, **{f"b{i}": "b" for i in range(5)}}
    write_preprocessed(cfg.run_dir / "preprocessed", subjects, mode, shape=(40, 36, 12))


def weights(path: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(path)
    return {f"{net}.{k}": v for net, sd in payload["networks"].items() for k, v in sd.items()}


def test_short_pix2pix_run_lowers_l1_and_writes_the_run_folder(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, steps=40, val_every=20, checkpoint_every=20, lr=1e-3)
    preprocess_fake(cfg)
    best = train(cfg)
    run = cfg.run_dir
    for name in ("config.yaml", "environment.json", "split.json", "checkpoints/last.pt", "logs/metrics.csv"):
        assert (run / name).is_file(), name
    assert list((run / "logs").glob("events.out.tfevents.*"))
    assert best == run / "checkpoints" / "best.pt"
    rows = [r.split(",") for r in (run / "logs" / "metrics.csv").read_text().splitlines()]
    header = rows[0]
    l1 = [float(r[header.index("loss_g_l1")]) for r in rows[1:] if r[header.index("loss_g_l1")]]
    assert sum(l1[-5:]) / 5 < 0.6 * sum(l1[:5]) / 5
    payload = load_checkpoint(best)
    assert payload["format"] == FORMAT and payload["config"]["name"] == "run"
    assert payload["network_args"]["G"]["kind"] == "unet"
    assert payload["metrics"]["val_mae"] > 0


def test_resume_gives_identical_weights(tmp_path: Path) -> None:
    full, _ = make_config(tmp_path, name="full", deterministic=True)
    preprocess_fake(full)
    train(full)
    interrupted, _ = make_config(tmp_path, name="interrupted", deterministic=True)
    preprocess_fake(interrupted)
    first_half = Trainer(interrupted)
    first_half.cfg = dataclasses.replace(interrupted, train=dataclasses.replace(interrupted.train, steps=3))
    first_half.run()
    assert load_checkpoint(interrupted.run_dir / "checkpoints" / "last.pt")["step"] == 3
    train(interrupted, resume=True)
    a = weights(full.run_dir / "checkpoints" / "last.pt")
    b = weights(interrupted.run_dir / "checkpoints" / "last.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_existing_run_is_not_overwritten_without_resume(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, steps=3)
    preprocess_fake(cfg)
    train(cfg)
    with pytest.raises(MedtransError, match="already has checkpoints"):
        train(cfg)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg, _ = make_config(tmp_path, steps=10, checkpoint_every=2)
    preprocess_fake(cfg)
    trainer = Trainer(cfg)
    original = trainer.recipe.train_step
    calls = {"n": 0}

    def poisoned(batch: dict) -> dict:
        calls["n"] += 1
        losses = original(batch)
        if calls["n"] == 5:
            losses["loss_g_l1"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(trainer.recipe, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match="NaN/Inf at step 5"):
        trainer.run()
    payload = load_checkpoint(cfg.run_dir / "checkpoints" / "last.pt")
    assert payload["step"] == 4
    assert all(torch.isfinite(v).all() for v in weights(cfg.run_dir / "checkpoints" / "last.pt").values()
               if v.is_floating_point())


def test_cyclegan_short_run_lowers_cycle_loss_and_resumes(tmp_path: Path) -> None:
    cfg, _ = make_config(tmp_path, recipe="cyclegan", steps=30, val_every=15, checkpoint_every=15, lr=1e-3)
    preprocess_fake(cfg, mode="unpaired")
    trainer = Trainer(cfg)
    assert set(trainer.recipe.networks) == {"G_AB", "G_BA", "D_A", "D_B"}
    batch = trainer.dataset[(0, 0)]
    with torch.no_grad():
        a = batch["a"][None]
        assert trainer.recipe.networks["G_AB"](a).shape == a.shape
        assert trainer.recipe.networks["G_BA"](batch["b"][None]).shape == a.shape
    trainer.run()
    rows = [r.split(",") for r in (cfg.run_dir / "logs" / "metrics.csv").read_text().splitlines()]
    col = rows[0].index("loss_cycle_a")
    cycle = [float(r[col]) for r in rows[1:] if len(r) > col and r[col]]
    assert sum(cycle[-5:]) < 0.7 * sum(cycle[:5])
    payload = load_checkpoint(cfg.run_dir / "checkpoints" / "last.pt")
    assert payload["extra"]["A"]["images"].shape[0] == min(cfg.train.pool_size, 30 * 2)
    assert "val_cycle_mae" in payload["metrics"]


def test_torchrun_two_processes_write_one_checkpoint(tmp_path: Path) -> None:
    cfg, values = make_config(tmp_path, steps=4, checkpoint_every=2, val_every=4)
    preprocess_fake(cfg)
    config_path = tmp_path / "ddp.yaml"
    values["output_root"] = str(tmp_path / "runs")
    config_path.write_text(yaml.safe_dump(values))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
         "-m", "medtrans", "train", str(config_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(p.name for p in (cfg.run_dir / "checkpoints").iterdir())
    assert checkpoints == ["best.pt", "last.pt"]
    assert load_checkpoint(cfg.run_dir / "checkpoints" / "last.pt")["step"] == 4

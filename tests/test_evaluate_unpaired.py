"""Unpaired (CycleGAN) evaluation: cycle metrics, anatomy kept, domain classifier, histogram distance, files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity
from torch import nn

from fakes import ellipsoid, write_checkpoint, write_preprocessed
from medtrans.config import config_from_dict
from medtrans.errors import CheckpointError
from medtrans.evaluate.domain_classifier import SliceCanvas, train_domain_classifier
from medtrans.evaluate.unpaired import (METRIC_NAMES, anatomy_mae, changed_region, cycle_metrics,
                                        evaluate_translators, evaluate_unpaired_run, histogram_distance,
                                        run_relative)
from medtrans.infer import Translator

CYCLEGAN = {"name": "cg", "data": {"domain_a": "a", "domain_b": "b", "modality_b": "mr"},
            "train": {"recipe": "cyclegan", "amp": "none"}, "model": {"ngf": 4, "ndf": 4}}
RESNET = {"kind": "resnet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 4, "norm": "instance",
          "dropout": 0.0, "n_blocks": 1}
PATCHGAN = {"kind": "patchgan", "spatial_dims": 2, "in_channels": 1, "ndf": 4, "n_layers": 2, "norm": "instance"}
CPU = torch.device("cpu")
FEW_STEPS = 20


class AddConstant(nn.Module):
    """A 'generator' that shifts every intensity by ``offset``."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.offset


def make_run(root: Path, mode: str = "unpaired") -> Path:
    """A run folder with a preprocessed cohort (3 subjects per domain) and a split: 2 train, 1 test each."""
    if mode == "paired":
        write_preprocessed(root / "preprocessed", {f"p{i}": "paired" for i in range(3)}, "paired")
        split = {"train": ["p0", "p1"], "val": [], "test": ["p2"]}
    else:
        write_preprocessed(root / "preprocessed", {"a0": "a", "a1": "a", "a2": "a", "b0": "b", "b1": "b", "b2": "b"},
                           "unpaired")
        split = {"train": ["a0", "a1", "b0", "b1"], "val": [], "test": ["a2", "b2"]}
    (root / "split.json").write_text(json.dumps(split))
    return root


def translator(generator: nn.Module) -> Translator:
    return Translator(generator, config_from_dict(CYCLEGAN), "mr", "mr", CPU)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_identity_generators_give_a_perfect_cycle_and_unchanged_anatomy(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    summary = evaluate_translators(run, translator(nn.Identity()), translator(nn.Identity()), tmp_path / "out",
                                   classifier_steps=FEW_STEPS)
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    assert [(r["subject"], r["direction"]) for r in rows] == [("a2", "a_to_b"), ("b2", "b_to_a")]
    for row in rows:
        assert float(row["cycle_mae"]) == 0.0
        assert float(row["cycle_psnr"]) == math.inf
        assert float(row["cycle_ssim"]) == pytest.approx(1.0, abs=1e-12)
        assert float(row["anatomy_mae"]) == 0.0
        # an untranslated volume is judged exactly as its input
        assert float(row["judged_target"]) == float(row["judged_target_input"])
        assert float(row["wasserstein"]) == float(row["wasserstein_input"]) > 0
    stats = summary["directions"]["a_to_b"]["metrics"]
    assert stats["cycle_mae"] == {"mean": 0.0, "std": 0.0, "median": 0.0, "q1": 0.0, "q3": 0.0, "n": 1}
    assert stats["cycle_psnr"]["mean"] is None, "infinite PSNR is written as null in standard JSON"
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written == summary
    assert set(written["classifier"]) >= {"real_a_judged_b", "real_b_judged_b", "train_accuracy"}


def test_constant_shift_gives_the_shift_as_cycle_and_anatomy_error(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    evaluate_translators(run, translator(AddConstant(0.2)), translator(nn.Identity()), tmp_path / "out",
                         classifier_steps=FEW_STEPS)
    rows = {r["direction"]: r for r in read_rows(tmp_path / "out" / "metrics.csv")}
    for direction in ("a_to_b", "b_to_a"):
        assert float(rows[direction]["cycle_mae"]) == pytest.approx(0.2, abs=1e-6)
        # MSE 0.04 against a peak of 2: 10 log10(4 / 0.04) = 20 dB
        assert float(rows[direction]["cycle_psnr"]) == pytest.approx(20.0, abs=1e-3)
        assert float(rows[direction]["cycle_ssim"]) < 1.0
    # A uniform change has no 'most changed' region: all of it counts against the anatomy.
    assert float(rows["a_to_b"]["anatomy_mae"]) == pytest.approx(0.2, abs=1e-6)
    assert float(rows["b_to_a"]["anatomy_mae"]) == 0.0


def test_cycle_ssim_matches_scikit_image_on_the_normalized_scale() -> None:
    rng = np.random.default_rng(3)
    mask = ellipsoid((24, 22, 20))
    original = np.where(mask, ndimage.gaussian_filter(rng.normal(size=mask.shape), 2) * 3, -1.0).clip(-1, 1)
    cycled = (original + rng.normal(0, 0.1, mask.shape)).clip(-1, 1)
    metrics = cycle_metrics(cycled, original, mask, CPU)
    # the paired recipe: outside the mask the lower bound, shifted to start at 0, full SSIM map,
    # mean over the mask without a 3-voxel border
    _, ssim_full = structural_similarity(np.where(mask, cycled, -1.0) + 1, np.where(mask, original, -1.0) + 1,
                                         data_range=2.0, full=True)
    inner = (slice(3, -3),) * 3
    assert metrics["cycle_ssim"] == pytest.approx(ssim_full[inner][mask[inner]].mean(), abs=1e-9)
    assert metrics["cycle_mae"] == pytest.approx(np.abs(cycled - original)[mask].mean(), abs=1e-9)
    mse = ((cycled - original)[mask] ** 2).mean()
    assert metrics["cycle_psnr"] == pytest.approx(10 * np.log10(4 / mse), abs=1e-6)


def test_anatomy_mae_ignores_the_region_the_translation_changed_most() -> None:
    mask = np.zeros((20, 20, 20), bool)
    mask[2:18, 2:18, 2:18] = True
    source = np.zeros(mask.shape, np.float32)
    translated = source.copy()
    translated[8:10, 8:10, 8:10] = 0.9  # a 'lesion': 8 of 4096 body voxels
    translated[mask] += 0.01  # and a small change everywhere
    changed = changed_region(translated, source, mask)
    assert changed[8:10, 8:10, 8:10].all()
    assert changed[6, 8, 8] and not changed[5, 8, 8], "grown by 2 voxels, not more"
    assert anatomy_mae(translated, source, mask) == pytest.approx(0.01, abs=1e-6)


def test_wasserstein_of_shifted_distributions_is_the_shift() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 0.1, (10, 10, 10))
    mask = np.ones(image.shape, bool)
    mask[:2] = False
    assert histogram_distance(image, mask, image[mask] + 0.3) == pytest.approx(0.3, abs=1e-9)
    reference = rng.normal(0.5, 0.1, 200_000)
    assert histogram_distance(image, mask, reference) == pytest.approx(0.5, abs=0.02)


def blob_volume(rng: np.random.Generator, with_blob: bool) -> tuple[np.ndarray, np.ndarray]:
    """A textured body; with a bright rod (through every axial slice) at a random in-plane spot."""
    shape = (32, 32, 12)
    mask = ellipsoid(shape, radius=1.2)
    body = np.where(mask, 0.2 * ndimage.gaussian_filter(rng.normal(size=shape), 1.5) - 0.2, -1.0)
    if with_blob:
        cx, cy = rng.integers(10, 22, size=2)
        xx, yy = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
        body[(((xx - cx) ** 2 + (yy - cy) ** 2) <= 9)[..., None] & mask] = 0.9
    return np.where(mask, body, -1.0).astype(np.float32), mask


def test_classifier_separates_blob_present_from_blob_absent() -> None:
    rng = np.random.default_rng(1)
    train_a = [blob_volume(rng, False) for _ in range(4)]
    train_b = [blob_volume(rng, True) for _ in range(4)]
    fitted = train_domain_classifier(train_a, train_b, steps=150, seed=0, image_size=32)
    assert fitted.train_accuracy > 0.9
    held_out_a = [fitted.judged_b(*blob_volume(rng, False)) for _ in range(2)]
    held_out_b = [fitted.judged_b(*blob_volume(rng, True)) for _ in range(2)]
    assert max(held_out_a) < 0.1 and min(held_out_b) > 0.9


def test_classifier_is_seeded() -> None:
    rng = np.random.default_rng(2)
    volumes = [blob_volume(rng, flag) for flag in (False, True)]
    scores = [train_domain_classifier([volumes[0]], [volumes[1]], steps=5, seed=7, image_size=16)
              .probability_b(np.moveaxis(volumes[0][0], 2, 0)) for _ in range(2)]
    np.testing.assert_array_equal(scores[0], scores[1])


def test_canvas_pads_and_crops_around_the_centre() -> None:
    slices = np.zeros((1, 4, 8), np.float32)
    slices[0, 1:3, 2:6] = 1.0
    placed = SliceCanvas(side=6, image_size=6).prepare(slices)[0, 0].numpy()
    assert placed.shape == (6, 6)
    assert placed[0].tolist() == [-1.0] * 6, "padded with background"
    np.testing.assert_array_equal(placed[2:4, 1:5], 1.0)


def test_checkpoint_run_on_a_paired_cohort_writes_both_directions(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", mode="paired")
    networks = {"G_AB": RESNET, "G_BA": RESNET, "D_A": PATCHGAN, "D_B": PATCHGAN}
    checkpoint = write_checkpoint(tmp_path / "cg.pt", CYCLEGAN, networks, translator="G_AB")
    summary = evaluate_unpaired_run(run, checkpoint, tmp_path / "evaluation", device="cpu", classifier_steps=FEW_STEPS)
    rows = read_rows(tmp_path / "evaluation" / "metrics.csv")
    assert list(rows[0]) == ["subject", "direction", *METRIC_NAMES]
    assert [(r["subject"], r["direction"]) for r in rows] == [("p2", "a_to_b"), ("p2", "b_to_a")]
    assert all(0 <= float(r["judged_target"]) <= 1 and float(r["cycle_mae"]) > 0 for r in rows)
    assert summary["checkpoint"] == str(checkpoint)
    assert summary["directions"]["b_to_a"]["metrics"]["cycle_ssim"]["n"] == 1


def test_a_pix2pix_checkpoint_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    unet = {"kind": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 4, "norm": "batch",
            "dropout": 0.5, "num_downs": 3}
    checkpoint = write_checkpoint(tmp_path / "p2p.pt", {"name": "p", "data": {"paired": "x"}}, {"G": unet})
    with pytest.raises(CheckpointError, match="p2p.pt.*lacks G_AB, G_BA"):
        evaluate_unpaired_run(run, checkpoint, tmp_path / "evaluation", device="cpu")


def test_a_shared_preprocessed_folder_named_in_the_config_is_used(tmp_path: Path) -> None:
    shared = make_run(tmp_path / "shared")
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text((shared / "split.json").read_text())
    cfg = config_from_dict({**CYCLEGAN, "preprocessed_dir": str(shared / "preprocessed")})
    identity = Translator(nn.Identity(), cfg, "mr", "mr", CPU)
    summary = evaluate_translators(run, identity, identity, run / "evaluation", classifier_steps=FEW_STEPS)
    assert summary["n"] == 2


def test_summary_names_a_checkpoint_inside_the_run_relative_to_it(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "cg"
    assert run_relative(run / "checkpoints" / "best.pt", run) == "checkpoints/best.pt"
    assert run_relative(tmp_path / "elsewhere.pt", run) == str(tmp_path / "elsewhere.pt")

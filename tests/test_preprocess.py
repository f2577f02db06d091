"""Preprocessing: geometry of resampling, nearest masks, exact inverse normalization, registration
against the recorded truth, skip on rerun, shards, and bad pairs flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import rotation_matrix
from medtrans.config import PreprocessConfig, config_from_dict, resolve_paths
from medtrans.io import Volume, read_volume
from medtrans.preprocess import body_mask, denormalize, normalize, reorient_and_resample, run_preprocess
from medtrans.preprocess.register import target_registration_error
from medtrans.preprocess.resample import orientation_direction, world_corners

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "paired"


def test_resampling_gives_the_configured_grid(oblique_volume: Volume) -> None:
    out = reorient_and_resample(oblique_volume, "RAS", (1.5, 2.0, 2.5), "linear", "mr")
    assert out.orientation == "RAS"
    np.testing.assert_allclose(out.spacing_mm, (1.5, 2.0, 2.5))
    np.testing.assert_allclose(out.direction, orientation_direction("RAS"))
    # the new box covers the input's world box, at most one voxel more per side
    low_in, high_in = world_corners(oblique_volume).min(0), world_corners(oblique_volume).max(0)
    low_out, high_out = world_corners(out).min(0), world_corners(out).max(0)
    assert np.all(low_out <= low_in + 1e-6) and np.all(high_out >= high_in - 1e-6)
    assert np.all((high_out - low_out) - (high_in - low_in) <= np.array([1.5, 2.0, 2.5]) + 1e-6)


def test_real_ct_resampled_keeps_hu_and_extent(real_data: Path) -> None:
    ct = read_volume(real_data / "lung1_image.nrrd")
    out = reorient_and_resample(ct, "RAS", (2.0, 2.0, 2.0), "bspline", "ct")
    assert out.orientation == "RAS" and out.spacing_mm == (2.0, 2.0, 2.0)
    assert out.array.min() >= -1024 and out.array.max() <= ct.array.max()
    extent_in = world_corners(ct).max(0) - world_corners(ct).min(0)
    extent_out = world_corners(out).max(0) - world_corners(out).min(0)
    assert np.all(extent_out >= extent_in - 1e-6) and np.all(extent_out <= extent_in + 2.0 + 1e-6)
    lungs_in = np.mean((ct.array > -950) & (ct.array < -500))
    lungs_out = np.mean((out.array > -950) & (out.array < -500))
    assert abs(lungs_in - lungs_out) < 0.02


def test_masks_resample_with_nearest_neighbour(real_data: Path) -> None:
    label = read_volume(real_data / "brain1_label.nrrd")
    out = reorient_and_resample(label, "RAS", (1.3, 1.3, 2.0), "bspline", "label")
    assert set(np.unique(out.array)) <= set(np.unique(label.array))
    volume_in = np.count_nonzero(label.array) * np.prod(label.spacing_mm)
    volume_out = np.count_nonzero(out.array) * np.prod(out.spacing_mm)
    assert abs(volume_out - volume_in) / volume_in < 0.1


@pytest.mark.parametrize("modality,mr_norm", [("ct", "percentile"), ("mr", "percentile"), ("mr", "zscore")])
def test_normalization_inverts_exactly(modality: str, mr_norm: str) -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(-1000, 2500, (20, 20, 10)) if modality == "ct" else rng.gamma(2.0, 150.0, (20, 20, 10))
    mask = np.zeros(values.shape, bool)
    mask[3:-3, 3:-3, 2:-2] = True
    cfg = PreprocessConfig(mr_norm=mr_norm)
    normalized, params = normalize(values, mask, modality, cfg)
    assert normalized.min() >= -1 and normalized.max() <= 1
    json.dumps(params)  # stored in the manifest
    restored = denormalize(normalized, params)
    if modality == "ct" or mr_norm == "percentile":
        low, high = params["low"], params["high"]
        inside = (values > low) & (values < high)
    else:
        inside = np.abs((values - params["mean"]) / params["std"]) < params["span"]
    np.testing.assert_allclose(restored[inside], values[inside], rtol=1e-5, atol=1e-3)


def test_body_mask_of_a_real_ct_is_one_filled_body(real_data: Path) -> None:
    ct = reorient_and_resample(read_volume(real_data / "lung2_image.nrrd"), "RAS", (3.0, 3.0, 5.0), "linear", "ct")
    mask = body_mask(ct, "ct")
    from scipy import ndimage

    assert ndimage.label(mask)[1] == 1
    middle = mask[:, :, mask.shape[2] // 2]
    assert middle.mean() > 0.2
    # the lungs are air inside the body: holes filled, so they are in the mask
    lungs = (ct.array[:, :, ct.shape[2] // 2] < -500) & ndimage.binary_fill_holes(middle)
    assert middle[lungs].all()


def registration_tre(record: dict, preprocessed: Path, subject: str) -> float:
    """Mean TRE (mm) over the CT body of the saved transform against the recorded truth."""
    truth = json.loads((SAMPLE / subject / "truth.json").read_text())
    transform = sitk.ReadTransform(str(preprocessed / record["registration"]["transform"]))
    ct = read_volume(SAMPLE / subject / "ct.nii.gz")
    body = np.argwhere(body_mask(ct, "ct"))[::50]
    return float(target_registration_error(transform, np.asarray(truth["fixed_to_moving"]), ct.index_to_world(body)).mean())


def study(tmp_path: Path, cohort: Path, name: str = "pre", **preprocess: object):
    values = {"name": name, "output_root": str(tmp_path / "runs"), "data": {"paired": str(cohort)},
              "preprocess": {"spacing_mm": [2.0, 2.0, 2.0], **preprocess}}
    return resolve_paths(config_from_dict(values))


def copy_subjects(tmp_path: Path, subjects: list[str]) -> Path:
    cohort = tmp_path / "cohort"
    for subject in subjects:
        shutil.copytree(SAMPLE / subject, cohort / subject)
    return cohort


def test_registration_recovers_the_truth_and_reruns_skip(tmp_path: Path) -> None:
    cohort = copy_subjects(tmp_path, ["p01", "p02"])
    cfg = study(tmp_path, cohort)
    out = cfg.run_dir / "preprocessed"
    first = run_preprocess(cfg, out, workers=1, progress=False)
    records = {r["subject"]: r for r in first.manifest["subjects"]}
    for subject in ("p01", "p02"):
        record = records[subject]
        assert record["status"] == "ok", record["reason"]
        assert registration_tre(record, out, subject) < 1.0
        assert record["registration"]["dice_after"] > 0.95
        assert record["registration"]["dice_after"] >= record["registration"]["dice_before"]
        mr = read_volume(out / record["images"]["mr"])
        ct = read_volume(out / record["images"]["ct"])
        assert mr.same_grid(ct) and mr.orientation == "RAS" and mr.spacing_mm == (2.0, 2.0, 2.0)
        assert all(n % 16 == 0 for n in mr.shape)
        assert read_volume(out / record["mr_on_ct"]).same_grid(read_volume(cohort / subject / "ct.nii.gz"), tol=1e-4)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    second = run_preprocess(cfg, out, workers=1, progress=False)
    assert second.counts["skipped"] == 2
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")} == stamps
    assert [r["subject"] for r in second.manifest["subjects"]] == ["p01", "p02"]


@pytest.mark.slow
def test_registration_recovers_the_truth_for_every_sample_subject(tmp_path: Path) -> None:
    cfg = study(tmp_path, SAMPLE)
    out = cfg.run_dir / "preprocessed"
    summary = run_preprocess(cfg, out, workers=2, progress=False)
    tres = {r["subject"]: registration_tre(r, out, r["subject"]) for r in summary.manifest["subjects"]}
    assert max(tres.values()) < 1.0, tres
    assert all(r["registration"]["dice_after"] > 0.95 for r in summary.manifest["subjects"])


def test_shards_compose_into_one_manifest(tmp_path: Path) -> None:
    cohort = copy_subjects(tmp_path, ["p01", "p03"])
    cfg = study(tmp_path, cohort, register="none")
    out = cfg.run_dir / "preprocessed"
    first = run_preprocess(cfg, out, workers=1, shard=(1, 2), progress=False)
    assert len(first.outcomes) == 1
    assert len([r for r in first.manifest["subjects"] if r["status"] == "ok"]) == 1
    second = run_preprocess(cfg, out, workers=1, shard=(2, 2), progress=False)
    assert sorted(r["subject"] for r in second.manifest["subjects"] if r["status"] == "ok") == ["p01", "p03"]


def test_an_mr_of_another_subject_is_flagged_and_left_out(tmp_path: Path) -> None:
    cohort = copy_subjects(tmp_path, ["p01", "p02", "p03", "p04"])
    shutil.copy(SAMPLE / "p06" / "mr.nii.gz", cohort / "p03" / "mr.nii.gz")
    cfg = study(tmp_path, cohort, registration_iterations=100)
    summary = run_preprocess(cfg, cfg.run_dir / "preprocessed", workers=1, progress=False)
    status = {r["subject"]: r["status"] for r in summary.manifest["subjects"]}
    assert status == {"p01": "ok", "p02": "ok", "p03": "flagged", "p04": "ok"}
    flagged = next(r for r in summary.manifest["subjects"] if r["subject"] == "p03")
    assert "p03" in flagged["subject"] and flagged["reason"]

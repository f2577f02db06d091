"""The evaluate stage and `medtrans evaluate` on tiny volumes written to tmp_path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from medtrans.cli import main
from medtrans.errors import MedtransError
from medtrans.evaluate import METRIC_NAMES, evaluate_folder, volume_metrics
from medtrans.evaluate.stage import evaluate_pairs
from medtrans.io import Volume, read_volume, write_volume

SHAPE = (20, 18, 14)
SUFFIXES = {"s01": ".nii.gz", "s02": ".mha", "s03": ".nrrd"}


def tiny_ct(seed: int, bone: bool = True) -> Volume:
    """A CT in HU: air around an ellipsoid body of soft tissue with noise and (optionally) a bone block."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij"))
    hu = np.where((grid**2).sum(0) < 0.7, 40.0, -1000.0) + rng.normal(size=SHAPE) * 15.0
    if bone:
        hu[8:12, 7:11, 5:9] = 900.0
    return Volume(hu.astype(np.float32), (1.5, 1.5, 2.5), (-14.0, 12.5, 30.0), np.eye(3))


def tiny_mask(ct: Volume) -> Volume:
    """The body mask of `tiny_ct` as uint8."""
    return ct.with_array((ct.array > -500).astype(np.uint8))


def synthetic(ct: Volume, seed: int) -> Volume:
    """A synthetic CT: the real one plus noise, on the same grid."""
    noise = np.random.default_rng(100 + seed).normal(size=SHAPE).astype(np.float32) * 40.0
    return ct.with_array(ct.array + noise)


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, Path]:
    """pred/, target/, mask/ folders with three subjects in three formats, and one extra target."""
    dirs = {name: tmp_path / name for name in ("pred", "target", "mask")}
    for subject, suffix in SUFFIXES.items():
        ct = tiny_ct(int(subject[1:]), bone=subject != "s03")
        write_volume(ct, dirs["target"] / f"{subject}{suffix}")
        write_volume(synthetic(ct, int(subject[1:])), dirs["pred"] / f"{subject}.nii.gz")
        write_volume(tiny_mask(ct), dirs["mask"] / f"{subject}.nii.gz")
    write_volume(tiny_ct(9), dirs["target"] / "s09.nii.gz")  # a target without prediction: ignored
    return dirs


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_cli_end_to_end(folders, tmp_path, capsys):
    out = tmp_path / "evaluation"
    rc = main(["evaluate", "--pred", str(folders["pred"]), "--target", str(folders["target"]),
               "--mask", str(folders["mask"]), "--out", str(out), "--device", "cpu"])
    assert rc == 0
    assert "evaluated 3 volume(s)" in capsys.readouterr().out
    rows = read_rows(out / "metrics.csv")
    assert [r["subject"] for r in rows] == ["s01", "s02", "s03"]
    assert list(rows[0]) == ["subject", *METRIC_NAMES]
    for row in rows:
        target = read_volume(next(folders["target"].glob(row["subject"] + ".*")))
        pred = read_volume(folders["pred"] / f"{row['subject']}.nii.gz")
        expected = volume_metrics(pred.array, target.array, target.array > -500)
        assert {k: float(row[k]) for k in METRIC_NAMES} == pytest.approx(expected, rel=1e-12, nan_ok=True)
    assert rows[2]["mae_bone"] == "NaN" and rows[2]["bone_dice"] == "NaN"  # s03 has no bone

    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 3 and summary["mask"] == "mask files"
    assert set(summary["metrics"]) == set(METRIC_NAMES)
    mae = [float(r["mae"]) for r in rows]
    assert summary["metrics"]["mae"] == pytest.approx(
        {"mean": np.mean(mae), "std": np.std(mae), "median": np.median(mae),
         "q1": np.percentile(mae, 25), "q3": np.percentile(mae, 75), "n": 3})
    assert summary["metrics"]["mae_bone"]["n"] == 2
    assert not list(out.glob(".tmp-*"))


def test_without_mask_uses_the_body_mask_of_the_real_ct(tmp_path):
    from medtrans.phantoms import make_paired_subject
    from medtrans.preprocess.masks import body_mask

    _, ct, _ = make_paired_subject(3, size="tiny")
    pred = ct.with_array(ct.array.astype(np.float32) + np.random.default_rng(0).normal(size=ct.shape) * 30.0)
    write_volume(ct, tmp_path / "target" / "h1.nrrd")
    write_volume(pred, tmp_path / "pred" / "h1.nii.gz")
    evaluate_folder(tmp_path / "pred", tmp_path / "target", None, tmp_path / "out", device="cpu")
    row = read_rows(tmp_path / "out" / "metrics.csv")[0]
    pred_hu = read_volume(tmp_path / "pred" / "h1.nii.gz").array
    expected = volume_metrics(pred_hu, ct.array, body_mask(ct, modality="ct"))
    assert float(row["mae"]) == pytest.approx(expected["mae"], rel=1e-12)
    assert float(row["ssim"]) == pytest.approx(expected["ssim"], rel=1e-12)
    everywhere = volume_metrics(pred_hu, ct.array, np.ones(ct.shape, bool))
    assert float(row["ssim"]) != pytest.approx(everywhere["ssim"], abs=1e-3)


@pytest.mark.faults
def test_grid_mismatch_names_both_files(folders, tmp_path):
    pred_path = folders["pred"] / "s02.nii.gz"
    moved = read_volume(pred_path)
    write_volume(Volume(moved.array, moved.spacing_mm, (0.0, 0.0, 0.0), moved.direction), pred_path)
    with pytest.raises(MedtransError, match=r"s02\.nii\.gz and .*s02\.mha are not on the same grid \(origin"):
        evaluate_folder(folders["pred"], folders["target"], folders["mask"], tmp_path / "out", device="cpu")
    assert not (tmp_path / "out" / "metrics.csv").exists()


@pytest.mark.faults
def test_shape_mismatch_is_refused_by_the_cli(folders, tmp_path, capsys):
    ct = read_volume(folders["target"] / "s01.nii.gz")
    write_volume(Volume(ct.array[:, :, :-2].copy(), ct.spacing_mm, ct.origin_mm, ct.direction),
                 folders["pred"] / "s01.nii.gz")
    rc = main(["evaluate", "--pred", str(folders["pred"]), "--target", str(folders["target"]),
               "--mask", str(folders["mask"]), "--out", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "s01.nii.gz" in err and "shape [20, 18, 12] vs [20, 18, 14]" in err


@pytest.mark.faults
def test_ct_not_in_hu_is_refused(folders, tmp_path):
    ct = read_volume(folders["target"] / "s01.nii.gz")
    raw = np.clip(ct.array + 1024.0, 0, None).astype(np.float32)
    raw[0, 0, 0] = 4095.0  # stored without the rescale intercept: 0..4095
    write_volume(ct.with_array(raw), folders["target"] / "s01.nii.gz")
    with pytest.raises(MedtransError, match=r"s01\.nii\.gz: does not look like a CT in HU: no negative values"):
        evaluate_folder(folders["pred"], folders["target"], folders["mask"], tmp_path / "out", device="cpu")


@pytest.mark.faults
def test_normalized_prediction_is_refused(folders, tmp_path):
    pred = read_volume(folders["pred"] / "s03.nii.gz")
    write_volume(pred.with_array(np.clip(pred.array / 1000.0, -1, 1)), folders["pred"] / "s03.nii.gz")
    with pytest.raises(MedtransError, match=r"s03\.nii\.gz: .* values only span \[-1, "):
        evaluate_folder(folders["pred"], folders["target"], folders["mask"], tmp_path / "out", device="cpu")


@pytest.mark.faults
def test_missing_target_or_mask_is_refused(folders, tmp_path):
    (folders["mask"] / "s02.nii.gz").unlink()
    with pytest.raises(MedtransError, match="no mask for subject 's02'"):
        evaluate_folder(folders["pred"], folders["target"], folders["mask"], tmp_path / "out", device="cpu")
    (folders["target"] / "s02.mha").unlink()
    with pytest.raises(MedtransError, match="no real CT for subject 's02'"):
        evaluate_folder(folders["pred"], folders["target"], None, tmp_path / "out", device="cpu")


@pytest.mark.faults
def test_empty_mask_is_refused(folders, tmp_path):
    mask = read_volume(folders["mask"] / "s01.nii.gz")
    write_volume(mask.with_array(np.zeros_like(mask.array)), folders["mask"] / "s01.nii.gz")
    with pytest.raises(MedtransError, match=r"s01\.nii\.gz: the mask is empty"):
        evaluate_folder(folders["pred"], folders["target"], folders["mask"], tmp_path / "out", device="cpu")


def test_output_inside_prediction_folder_and_rerun(folders):
    out = folders["pred"] / "evaluation"
    first = evaluate_folder(folders["pred"], folders["target"], folders["mask"], out, device="cpu")
    second = evaluate_folder(folders["pred"], folders["target"], folders["mask"], out, device="cpu")
    assert first["n"] == second["n"] == 3
    assert json.loads((out / "summary.json").read_text())["metrics"]["ssim"]["mean"] == pytest.approx(
        second["metrics"]["ssim"]["mean"])
    assert not math.isnan(second["metrics"]["ssim"]["mean"])


def test_dicom_target_folder_is_matched_by_folder_name(folders, tmp_path):
    from medtrans.io.dicom import write_dicom_series

    (folders["target"] / "s01.nii.gz").unlink()
    write_dicom_series(tiny_ct(1), folders["target"] / "s01", modality="CT")
    summary = evaluate_folder(folders["pred"], folders["target"], folders["mask"], tmp_path / "out", device="cpu")
    assert summary["n"] == 3
    row = read_rows(tmp_path / "out" / "metrics.csv")[0]
    target = read_volume(folders["target"] / "s01")
    pred = read_volume(folders["pred"] / "s01.nii.gz").array
    assert float(row["mae"]) == pytest.approx(volume_metrics(pred, target.array, target.array > -500)["mae"], rel=1e-12)


def test_evaluate_pairs_keeps_order_and_mixes_given_and_computed_masks(folders, tmp_path):
    from medtrans.preprocess.masks import body_mask

    pairs = [("b", folders["pred"] / "s02.nii.gz", folders["target"] / "s02.mha", None),
             ("a", folders["pred"] / "s01.nii.gz", folders["target"] / "s01.nii.gz", folders["mask"] / "s01.nii.gz")]
    summary = evaluate_pairs(pairs, tmp_path / "out", device="cpu")
    assert summary["mask"] == "mask files where given, else the body mask of the real CT"
    rows = read_rows(tmp_path / "out" / "metrics.csv")
    assert [r["subject"] for r in rows] == ["b", "a"]
    target = read_volume(folders["target"] / "s02.mha")
    expected = volume_metrics(read_volume(pairs[0][1]).array, target.array, body_mask(target, modality="ct"))
    assert float(rows[0]["mae"]) == pytest.approx(expected["mae"], rel=1e-12)

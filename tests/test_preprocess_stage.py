"""The preprocess stage over a cohort: layout, manifest, skip on rerun, shards, flags, failures, CLI."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from medtrans.cli import main
from medtrans.config import config_from_dict, resolve_paths
from medtrans.data.manifest import load_manifest, usable_records
from medtrans.errors import MedtransError
from medtrans.io import read_volume, write_volume
from medtrans.phantoms import make_paired_subject, make_unpaired_subject
from medtrans.preprocess.stage import rebuild_manifest, run_preprocess

SETTINGS = {"spacing_mm": [4.0, 4.0, 4.0]}  # tiny phantoms (4-6 mm grids): fast


def write_pair(folder: Path, seed: int, mr_seed: int | None = None) -> None:
    mr, ct, truth = make_paired_subject(seed, "tiny")
    if mr_seed is not None:
        mr = make_paired_subject(mr_seed, "tiny")[0]
    write_volume(mr, folder / "mr.nii.gz")
    write_volume(ct, folder / "ct.nii.gz")
    (folder / "truth.json").write_text(json.dumps({"fixed_to_moving": np.asarray(truth["fixed_to_moving"]).tolist()}))


@pytest.fixture(scope="module")
def cohort_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cohort") / "paired"
    for i, seed in enumerate((11, 12, 13), start=1):
        write_pair(root / f"s{i}", seed)
    return root


@pytest.fixture
def paired_root(tmp_path, cohort_template) -> Path:
    root = tmp_path / "paired"
    for path in cohort_template.rglob("*"):
        if path.is_file():
            (root / path.relative_to(cohort_template)).parent.mkdir(parents=True, exist_ok=True)
            (root / path.relative_to(cohort_template)).write_bytes(path.read_bytes())
    return root


def study(tmp_path: Path, data: dict, **preprocess):
    values = {"name": "t", "output_root": str(tmp_path / "runs"), "data": data,
              "preprocess": {**SETTINGS, **preprocess}}
    if "paired" not in data:
        values["train"] = {"recipe": "cyclegan"}
    return resolve_paths(config_from_dict(values))


def digest_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def mtimes(out: Path) -> dict[str, int]:
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"}


def test_paired_run_writes_the_design_layout(tmp_path, paired_root):
    before = digest_tree(paired_root)
    cfg = study(tmp_path, {"paired": str(paired_root)})
    out = tmp_path / "pre"
    summary = run_preprocess(cfg, out, progress=False)
    assert summary.counts == {"ok": 3, "flagged": 0, "failed": 0, "skipped": 0}
    assert digest_tree(paired_root) == before  # inputs untouched
    manifest = load_manifest(out)
    assert manifest["version"] == 1 and manifest["mode"] == "paired" and manifest["missing"] == []
    assert manifest["settings"]["spacing_mm"] == [4.0, 4.0, 4.0]
    assert [r["subject"] for r in usable_records(manifest)] == ["s1", "s2", "s3"]
    record = manifest["subjects"][0]
    assert record["inputs"] == {"mr": str(paired_root / "s1" / "mr.nii.gz"), "ct": str(paired_root / "s1" / "ct.nii.gz")}
    assert record["images"] == {"mr": "s1/mr.nii.gz", "ct": "s1/ct.nii.gz"} and record["mask"] == "s1/body_mask.nii.gz"
    mr, ct, mask = (read_volume(out / p) for p in ("s1/mr.nii.gz", "s1/ct.nii.gz", "s1/body_mask.nii.gz"))
    assert mr.same_grid(ct) and mask.same_grid(ct) and ct.orientation == "RAS"
    assert list(ct.shape) == record["shape"] and all(n % 16 == 0 for n in ct.shape)
    assert ct.spacing_mm == (4.0, 4.0, 4.0) and record["spacing_mm"] == [4.0, 4.0, 4.0]
    assert mr.array.dtype == ct.array.dtype == np.float32 and mask.array.dtype == np.uint8
    for image in (mr, ct):
        assert image.array.min() >= -1.0 and image.array.max() <= 1.0
        assert image.array[mask.array == 0].mean() < -0.9  # air outside the body
    assert record["normalization"]["ct"] == {"kind": "window", "low": -1024.0, "high": 3000.0}
    assert record["normalization"]["mr"]["kind"] == "percentile"
    registration = record["registration"]
    assert registration["method"] == "rigid" and registration["transform"] == "s1/mr_to_ct.tfm"
    assert registration["metric_after"] < registration["metric_before"]
    assert registration["dice_after"] > max(0.95, registration["dice_before"])
    mr_on_ct = read_volume(out / record["mr_on_ct"])
    assert mr_on_ct.same_grid(read_volume(paired_root / "s1" / "ct.nii.gz"))
    assert isinstance(sitk.ReadTransform(str(out / registration["transform"])), sitk.Transform)


def test_rerun_skips_unchanged_subjects_and_redoes_changed_ones(tmp_path, paired_root):
    cfg = study(tmp_path, {"paired": str(paired_root)})
    out = tmp_path / "pre"
    run_preprocess(cfg, out, progress=False)
    first = mtimes(out)
    again = run_preprocess(cfg, out, progress=False)
    assert again.counts["skipped"] == 3 and mtimes(out) == first  # no work, nothing rewritten
    # New content for one input: only that subject is redone.
    write_pair(paired_root / "s2", seed=99)
    third = run_preprocess(cfg, out, progress=False)
    assert third.counts["skipped"] == 2
    assert [o.record["subject"] for o in third.outcomes if not o.skipped] == ["s2"]
    # A record removed (a run killed before writing it) makes a rerun redo just that subject.
    (out / "s3" / "record.json").unlink()
    fourth = run_preprocess(cfg, out, progress=False)
    assert [o.record["subject"] for o in fourth.outcomes if not o.skipped] == ["s3"]
    # Other settings: every subject is redone, and workers alone do not count as a setting.
    assert run_preprocess(cfg, out, workers=1, progress=False).counts["skipped"] == 3
    changed = study(tmp_path, {"paired": str(paired_root)}, crop_margin_mm=4.0)
    assert run_preprocess(changed, out, progress=False).counts["skipped"] == 0


def test_shards_compose_into_one_manifest(tmp_path, paired_root):
    cfg = study(tmp_path, {"paired": str(paired_root)})
    out = tmp_path / "pre"
    first = run_preprocess(cfg, out, shard=(1, 2), progress=False)
    assert sorted(o.record["subject"] for o in first.outcomes) == ["s1", "s3"]
    assert first.manifest["missing"] == ["s2"]
    second = run_preprocess(cfg, out, shard=(2, 2), progress=False)
    assert [o.record["subject"] for o in second.outcomes] == ["s2"]
    assert [r["subject"] for r in load_manifest(out)["subjects"]] == ["s1", "s2", "s3"]
    assert rebuild_manifest(cfg, out) == load_manifest(out)


def test_wrong_mr_is_flagged_loudly_and_left_out(tmp_path, paired_root, caplog):
    write_pair(paired_root / "s4", seed=14, mr_seed=40)  # s4's CT with another head's MR
    cfg = study(tmp_path, {"paired": str(paired_root)})
    out = tmp_path / "pre"
    with caplog.at_level(logging.INFO, logger="medtrans.preprocess"):
        summary = run_preprocess(cfg, out, progress=False)
    assert summary.counts == {"ok": 3, "flagged": 1, "failed": 0, "skipped": 0}
    record = next(r for r in summary.manifest["subjects"] if r["subject"] == "s4")
    # Its head outline still matches (Dice passes); its anatomy inside does not.
    assert record["registration"]["dice_after"] > cfg.preprocess.min_body_dice
    assert record["status"] == "flagged" and "mutual information" in record["reason"]
    assert [r["subject"] for r in usable_records(load_manifest(out))] == ["s1", "s2", "s3"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("s4 FLAGGED" in w for w in warnings)
    assert any("1 subject(s) flagged and left out of training: s4" in w for w in warnings)
    # A rerun keeps it flagged (and says so again) without redoing it.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="medtrans.preprocess"):
        assert run_preprocess(cfg, out, progress=False).counts == {"ok": 3, "flagged": 1, "failed": 0, "skipped": 4}
    assert any("s4 FLAGGED" in r.getMessage() for r in caplog.records)


def test_body_dice_gate_is_applied_without_redoing_subjects(tmp_path, paired_root):
    out = tmp_path / "pre"
    assert run_preprocess(study(tmp_path, {"paired": str(paired_root)}), out, progress=False).counts["ok"] == 3
    strict = study(tmp_path, {"paired": str(paired_root)}, min_body_dice=0.999)
    summary = run_preprocess(strict, out, progress=False)
    assert summary.counts == {"ok": 0, "flagged": 3, "failed": 0, "skipped": 3}
    assert all("min_body_dice" in r["reason"] for r in summary.manifest["subjects"])


def test_unreadable_subject_fails_alone_and_is_retried(tmp_path, paired_root):
    (paired_root / "s3" / "ct.nii.gz").write_bytes(b"not a nifti file")
    cfg = study(tmp_path, {"paired": str(paired_root)})
    out = tmp_path / "pre"
    summary = run_preprocess(cfg, out, progress=False)
    assert summary.counts == {"ok": 2, "flagged": 0, "failed": 1, "skipped": 0}
    failed = next(r for r in summary.manifest["subjects"] if r["status"] == "failed")
    assert failed["subject"] == "s3" and "ct.nii.gz" in failed["reason"]
    write_pair(paired_root / "s3", seed=13)
    assert run_preprocess(cfg, out, progress=False).counts == {"ok": 3, "flagged": 0, "failed": 0, "skipped": 2}


def test_output_inside_input_is_refused(tmp_path, paired_root):
    cfg = study(tmp_path, {"paired": str(paired_root)})
    for out in (paired_root, paired_root / "s1" / "pre"):
        with pytest.raises(MedtransError, match="inside the input folder"):
            run_preprocess(cfg, out, progress=False)
    assert not (paired_root / "s1" / "pre").exists()


def test_register_none_keeps_the_scanner_alignment(tmp_path, paired_root):
    cfg = study(tmp_path, {"paired": str(paired_root)}, register="none", min_body_dice=0.5)
    summary = run_preprocess(cfg, tmp_path / "pre", progress=False)
    registration = summary.manifest["subjects"][0]["registration"]
    assert registration["transform"] is None and registration["method"] == "none"
    assert registration["dice_before"] == registration["dice_after"]
    assert registration["metric_before"] == registration["metric_after"] is not None


def test_unpaired_cohorts(tmp_path):
    for domain, pathology in (("healthy", False), ("pathology", True)):
        for i in range(2):
            image, lesion = make_unpaired_subject(20 + i + 10 * pathology, pathology, "tiny")
            write_volume(image, tmp_path / domain / f"{domain[0]}{i}" / "image.nii.gz")
            if lesion is not None:
                write_volume(lesion, tmp_path / domain / f"{domain[0]}{i}" / "lesion.nii.gz")
    cfg = study(tmp_path, {"domain_a": str(tmp_path / "healthy"), "domain_b": str(tmp_path / "pathology"),
                           "modality_a": "mr", "modality_b": "mr"})
    out = tmp_path / "pre"
    summary = run_preprocess(cfg, out, progress=False)
    assert summary.counts["ok"] == 4
    manifest = load_manifest(out)
    assert manifest["mode"] == "unpaired"
    assert [(r["domain"], r["subject"]) for r in manifest["subjects"]] == [("a", "h0"), ("a", "h1"), ("b", "p0"), ("b", "p1")]
    record = manifest["subjects"][2]
    assert record["images"] == {"image": "b/p0/image.nii.gz"} and record["mask"] == "b/p0/body_mask.nii.gz"
    assert record["registration"] is None and record["normalization"]["image"]["kind"] == "percentile"
    image = read_volume(out / record["images"]["image"])
    assert image.orientation == "RAS" and image.spacing_mm == (4.0, 4.0, 4.0)
    assert image.same_grid(read_volume(out / record["mask"]))


def test_dicom_series_folders(tmp_path):
    dicom = Path(__file__).resolve().parents[1] / "sample_data" / "dicom"
    if not dicom.is_dir():
        pytest.skip("sample DICOM subject not found (python sample_data/make_sample_data.py)")
    cfg = study(tmp_path, {"paired": str(dicom)})
    record = run_preprocess(cfg, tmp_path / "pre", progress=False).manifest["subjects"][0]
    assert record["status"] == "ok" and record["inputs"]["mr"] == str(dicom / "p01" / "mr")
    assert record["registration"]["dice_after"] > 0.95


def test_cli_with_workers_and_default_output(tmp_path, paired_root, capsys):
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({"name": "cli", "output_root": str(tmp_path / "runs"),
                                      "data": {"paired": str(paired_root)}, "preprocess": SETTINGS}))
    assert main(["preprocess", str(config), "--workers", "2", "--shard", "1/1", "--no-progress"]) == 0
    out = tmp_path / "runs" / "cli" / "preprocessed"
    assert "3 ok, 0 flagged, 0 failed" in capsys.readouterr().out
    assert len(load_manifest(out)["subjects"]) == 3
    assert main(["preprocess", str(config), "--shard", "3/2"]) == 2
    assert "--shard: need 1 <= K <= N" in capsys.readouterr().err
    assert main(["preprocess", str(config), "--out", str(paired_root / "x")]) == 2

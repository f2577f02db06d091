"""The evaluate stage: metrics of synthetic CTs against the real CTs, per volume and summarized.

`evaluate_pairs` takes explicit (subject, synthetic CT, real CT, mask) paths (the pipeline);
`evaluate_folder` matches folders by subject (file name without its volume suffix, or DICOM folder
name; `medtrans evaluate`). Both write ``metrics.csv`` (one row per subject) and ``summary.json``
(statistics per metric).

Example:
    >>> summary = evaluate_folder("runs/demo/predictions", "data/ct", None, "runs/demo/evaluation")  # doctest: +SKIP
    >>> summary["metrics"]["mae"]["mean"]  # doctest: +SKIP
    61.2
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from tqdm import tqdm

from medtrans.device import resolve_device
from medtrans.errors import MedtransError
from medtrans.evaluate.metrics import METRIC_NAMES, SSIM_WINDOW, volume_metrics
from medtrans.preprocess.normalize import require_ct_in_hu
from medtrans.evaluate.summary import json_ready, metric_stats
from medtrans.io import Volume, is_volume_file, read_volume, write_text_atomic
from medtrans.io.files import volume_suffix
from medtrans.preprocess.masks import body_mask

METRIC_UNITS = {"mae": "HU", "psnr": "dB", "ssim": "1", "mae_air": "HU", "mae_soft": "HU", "mae_bone": "HU",
                "bone_dice": "1"}
# Geometry read back from NIfTI is float32, so grids written by different tools differ by ~1e-5 mm.
GRID_TOLERANCE_MM = 1e-3

Pair = tuple[str, Path, Path, Optional[Path]]


def list_subjects(folder: Path, role: str, skip: Path | None = None) -> dict[str, Path]:
    """Volume files and DICOM folders in ``folder`` by subject; ``skip`` (e.g. the output folder) is ignored.

    Raises:
        MedtransError: the folder is missing, or two volumes share a subject name.
    """
    if not folder.is_dir():
        raise MedtransError(f"{folder}: {role} folder not found")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or (skip is not None and path.resolve() == skip.resolve()):
            continue
        if is_volume_file(path):
            subject = path.name[: -len(volume_suffix(path))]
        elif path.is_dir():
            subject = path.name
        else:
            continue
        if subject in found:
            raise MedtransError(f"{folder}: two {role} volumes for subject {subject!r}: {found[subject].name} and {path.name}")
        found[subject] = path
    return found


def grid_difference(a: Volume, b: Volume) -> str:
    """What differs between the grids of ``a`` and ``b``, in words (empty when they match)."""
    if a.same_grid(b, tol=GRID_TOLERANCE_MM):
        return ""
    parts = []
    if a.shape != b.shape:
        parts.append(f"shape {list(a.shape)} vs {list(b.shape)}")
    if not np.allclose(a.spacing_mm, b.spacing_mm, atol=GRID_TOLERANCE_MM):
        parts.append(f"spacing {list(a.spacing_mm)} vs {list(b.spacing_mm)} mm")
    if not np.allclose(a.origin_mm, b.origin_mm, atol=GRID_TOLERANCE_MM):
        parts.append(f"origin {list(a.origin_mm)} vs {list(b.origin_mm)} mm")
    if not np.allclose(a.direction, b.direction, atol=GRID_TOLERANCE_MM):
        parts.append(f"direction {a.orientation} vs {b.orientation}")
    return ", ".join(parts)


def check_same_grid(a: Volume, a_path: Path, b: Volume, b_path: Path) -> None:
    """Refuse two volumes that are not on one voxel grid, naming both files."""
    difference = grid_difference(a, b)
    if difference:
        raise MedtransError(f"{a_path} and {b_path} are not on the same grid ({difference}); "
                            "resample the synthetic CT onto the real CT's grid before evaluating")


def check_ct(vol: Volume, path: Path) -> None:
    """Refuse a CT that is obviously not in HU (no negative values, or a tiny value span) or too small for SSIM."""
    require_ct_in_hu(vol.array, str(path))
    if min(vol.shape) < SSIM_WINDOW:
        raise MedtransError(f"{path}: shape {list(vol.shape)} is too small: SSIM needs at least "
                            f"{SSIM_WINDOW} voxels along each axis")


def load_mask(target: Volume, target_path: Path, mask_path: Path | None) -> np.ndarray:
    """The body mask (X, Y, Z) bool: read from ``mask_path`` (nonzero = inside), else computed from the real CT."""
    if mask_path is None:
        mask, source = np.asarray(body_mask(target, modality="ct"), dtype=bool), f"body mask of {target_path}"
    else:
        mask_vol = read_volume(mask_path)
        check_same_grid(mask_vol, mask_path, target, target_path)
        mask, source = mask_vol.array != 0, str(mask_path)
    if not mask.any():
        raise MedtransError(f"{source}: the mask is empty, nothing to evaluate")
    return mask


def evaluate_subject(pred_path: Path, target_path: Path, mask_path: Path | None, device: torch.device) -> dict[str, float]:
    """Read one synthetic / real CT pair (and mask), check them, and compute `volume_metrics`."""
    pred, target = read_volume(pred_path), read_volume(target_path)
    check_same_grid(pred, pred_path, target, target_path)
    check_ct(pred, pred_path)
    check_ct(target, target_path)
    mask = load_mask(target, target_path, mask_path)
    return volume_metrics(pred.array, target.array, mask, device=device)


def mask_source(pairs: list[Pair]) -> str:
    """Where the masks of ``pairs`` came from, in words, for summary.json."""
    given = [mask_path is not None for *_, mask_path in pairs]
    if all(given):
        return "mask files"
    if not any(given):
        return "body mask of the real CT"
    return "mask files where given, else the body mask of the real CT"


def summarize(rows: list[dict[str, Any]], mask: str) -> dict[str, Any]:
    """The summary.json content: statistics per metric over the volumes in ``rows``."""
    return {
        "n": len(rows),
        "mask": mask,
        "definitions": "SynthRAD2023 (see docs/metrics.md)",
        "units": METRIC_UNITS,
        "metrics": {name: metric_stats([row[name] for row in rows]) for name in METRIC_NAMES},
    }


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """metrics.csv text: a header, then one row per volume; an undefined metric is written ``NaN``."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["subject", *METRIC_NAMES])
    for row in rows:
        writer.writerow([row["subject"], *("NaN" if math.isnan(row[n]) else repr(row[n]) for n in METRIC_NAMES)])
    return text.getvalue()


def evaluate_pairs(pairs: list[Pair], out_dir: str | Path, device: str = "auto") -> dict[str, Any]:
    """Evaluate (subject, synthetic CT, real CT, mask or None) tuples; write metrics.csv and summary.json.

    A None mask is computed from the real CT with `medtrans.preprocess.masks.body_mask`. Paths may be
    volume files or DICOM series folders. Returns the summary written to summary.json.

    Raises:
        MedtransError: an unreadable volume, synthetic CT and real CT (or mask) on different grids,
            a CT not in HU, an empty mask.
    """
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    rows = []
    for subject, pred_path, target_path, mask_path in tqdm(pairs, desc="evaluate", unit="volume"):
        metrics = evaluate_subject(Path(pred_path), Path(target_path), None if mask_path is None else Path(mask_path),
                                   torch_device)
        rows.append({"subject": subject, **metrics})
    summary = summarize(rows, mask_source(pairs))
    write_text_atomic(out_dir / "metrics.csv", metrics_csv(rows))
    write_text_atomic(out_dir / "summary.json", json.dumps(json_ready(summary), indent=2, allow_nan=False) + "\n")
    return summary


def match_folders(pred_dir: Path, target_dir: Path, mask_dir: Path | None, out_dir: Path) -> list[Pair]:
    """(subject, synthetic CT, real CT, mask or None) for every volume in ``pred_dir``, matched by subject.

    Raises:
        MedtransError: a folder is missing, ``pred_dir`` has no volumes, or a subject has no real CT (or mask).
    """
    preds = list_subjects(pred_dir, "prediction", skip=out_dir)
    if not preds:
        raise MedtransError(f"{pred_dir}: no volumes to evaluate (expected <subject>.nii.gz, .mha, .nrrd or DICOM folders)")
    targets = list_subjects(target_dir, "target", skip=out_dir)
    masks = list_subjects(mask_dir, "mask", skip=out_dir) if mask_dir is not None else {}
    for subject, pred_path in preds.items():
        if subject not in targets:
            raise MedtransError(f"{pred_path}: no real CT for subject {subject!r} in {target_dir}")
        if mask_dir is not None and subject not in masks:
            raise MedtransError(f"{pred_path}: no mask for subject {subject!r} in {mask_dir}")
    return [(subject, pred_path, targets[subject], masks.get(subject)) for subject, pred_path in preds.items()]


def evaluate_folder(pred_dir: str | Path, target_dir: str | Path, mask_dir: str | Path | None,
                    out_dir: str | Path, device: str = "auto") -> dict[str, Any]:
    """Evaluate every synthetic CT in ``pred_dir`` against the real CT of the same subject in ``target_dir``.

    Args:
        pred_dir: synthetic CTs in HU, one volume file or DICOM folder per subject.
        target_dir: real CTs in HU, named by the same subjects (extra subjects are ignored).
        mask_dir: body masks named by subject; None computes them from the real CTs.
        out_dir: where metrics.csv and summary.json are written (atomically).
        device: "auto", "cpu", "cuda" or "cuda:N".

    Returns:
        The summary written to summary.json.

    Raises:
        MedtransError: a missing folder or subject, an unreadable volume, pred and target (or mask) on
            different grids, a CT not in HU, an empty mask.
    """
    resolve_device(device)  # a wrong device fails before any volume is read
    pairs = match_folders(Path(pred_dir), Path(target_dir), None if mask_dir is None else Path(mask_dir), Path(out_dir))
    return evaluate_pairs(pairs, out_dir, device)

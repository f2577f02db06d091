"""Validation on whole preprocessed volumes through the same code inference and evaluation use."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from medtrans.data.manifest import SubjectArrays, load_subject, usable_records
from medtrans.evaluate.metrics import volume_metrics
from medtrans.preprocess.normalize import denormalize

Translate = Callable[[np.ndarray], np.ndarray]


def validation_subjects(preprocessed_dir: Path, manifest: dict, subject_ids: list[str]) -> list[tuple[dict, SubjectArrays]]:
    """(record, arrays) of the usable validation subjects."""
    wanted = set(subject_ids)
    return [(r, load_subject(preprocessed_dir, r)) for r in usable_records(manifest) if r["subject"] in wanted]


def paired_metrics(translate: Translate, subjects: list[tuple[dict, SubjectArrays]], device: str) -> dict[str, float]:
    """Mean MAE (HU), PSNR, SSIM inside the body over paired subjects: synthetic CT against the real one.

    The reference is the preprocessed CT mapped back to HU, i.e. clipped to the CT window.
    """
    rows = []
    for record, subject in subjects:
        ct_params = record["normalization"]["ct"]
        synthetic_hu = denormalize(translate(np.asarray(subject.images["mr"])), ct_params)
        real_hu = denormalize(np.asarray(subject.images["ct"]), ct_params)
        rows.append(volume_metrics(synthetic_hu, real_hu, subject.mask, device=device))
    return {f"val_{key}": float(np.nanmean([row[key] for row in rows])) for key in ("mae", "psnr", "ssim")}


def cycle_metrics(forward: Translate, backward: Translate, subjects: list[tuple[dict, SubjectArrays]]) -> dict[str, float]:
    """Mean cycle-reconstruction MAE (normalized units, inside the body) of A -> B -> A for unpaired subjects."""
    errors = []
    for _, subject in subjects:
        image = np.asarray(subject.images["image"])
        cycled = backward(forward(image)) if subject.domain == "a" else forward(backward(image))
        errors.append(float(np.abs(cycled - image)[subject.mask].mean()))
    return {"val_cycle_mae": float(np.mean(errors))}

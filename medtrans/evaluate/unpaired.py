"""Evaluate a CycleGAN run without ground truth: cycle reconstruction, anatomy kept, realism, intensity histograms.

For every test volume of domain A (then of domain B) the generators translate it to the other domain
and back. All numbers are on the normalized [-1, 1] scale of the preprocessed volumes (data range 2)
and inside the source volume's body mask; docs/metrics.md, "Unpaired (CycleGAN) evaluation", gives
the definitions. Writes ``metrics.csv`` (one row per subject and direction, A -> B first) and
``summary.json`` (statistics per direction and metric, and the domain classifier's reference scores).

Example:
    >>> summary = evaluate_unpaired_run(Path("runs/cg"), Path("runs/cg/checkpoints/best.pt"),
    ...                                 Path("runs/cg/evaluation"))  # doctest: +SKIP
    >>> summary["directions"]["a_to_b"]["metrics"]["judged_target"]["mean"]  # doctest: +SKIP
    0.7
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy import ndimage
from scipy.stats import wasserstein_distance
from tqdm import tqdm

from medtrans.config import Config
from medtrans.data import load_manifest, load_split, load_subject, usable_records
from medtrans.data.views import AXIS_INDEX
from medtrans.device import resolve_device
from medtrans.errors import CheckpointError, MedtransError
from medtrans.evaluate.domain_classifier import FittedClassifier, train_domain_classifier
from medtrans.evaluate.metrics import DATA_RANGE_HU, HU_RANGE, SSIM_WINDOW, masked_ssim, psnr_db
from medtrans.infer.translator import Translator
from medtrans.evaluate.summary import json_ready, metric_stats
from medtrans.io import write_text_atomic
from medtrans.models.apply import translate_volume
from medtrans.train.checkpoint import load_checkpoint

DIRECTIONS = {"a_to_b": ("a", "b"), "b_to_a": ("b", "a")}
"""Direction name -> (source domain, target domain), in report order."""
METRIC_NAMES = ("cycle_mae", "cycle_psnr", "cycle_ssim", "anatomy_mae", "judged_target", "judged_target_input",
                "wasserstein", "wasserstein_input")
METRIC_UNITS = {"cycle_mae": "normalized", "cycle_psnr": "dB", "cycle_ssim": "1", "anatomy_mae": "normalized",
                "judged_target": "fraction of body slices", "judged_target_input": "fraction of body slices",
                "wasserstein": "normalized", "wasserstein_input": "normalized"}
NORMALIZED_RANGE = 2.0
CHANGED_FRACTION = 0.05
"""Share of body voxels with the largest |translated - input| that count as deliberately changed."""
CHANGED_MARGIN_VOXELS = 2
CLASSIFIER_STEPS = 300
PAIRED_IMAGE_KEYS = {"a": "mr", "b": "ct"}

Translate = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DomainVolume:
    """One preprocessed volume of a domain: (X, Y, Z) float32 in [-1, 1] and its bool body mask."""

    subject: str
    image: np.ndarray
    mask: np.ndarray


def domain_volumes(preprocessed_dir: Path, manifest: dict, subject_ids: list[str], domain: str) -> list[DomainVolume]:
    """The usable volumes of ``domain`` ("a" or "b") among ``subject_ids``.

    Unpaired manifests give each subject's ``image`` when its domain matches; paired manifests give
    every subject's MR as domain A and its CT as domain B (the pairing is not used).
    """
    wanted = set(subject_ids)
    paired = manifest["mode"] == "paired"
    key = PAIRED_IMAGE_KEYS[domain] if paired else "image"
    volumes = []
    for record in usable_records(manifest):
        if record["subject"] not in wanted or not (paired or record.get("domain") == domain):
            continue
        arrays = load_subject(preprocessed_dir, record)
        volumes.append(DomainVolume(record["subject"], np.asarray(arrays.images[key], dtype=np.float32),
                                    np.asarray(arrays.mask)))
    return volumes


def _on_hu_scale(normalized: np.ndarray) -> torch.Tensor:
    """``normalized`` mapped linearly from [-1, 1] onto `HU_RANGE`, float64.

    PSNR and SSIM with the paired recipe (clip to the range, outside the mask the lower bound, shift
    to 0, peak = range) are unchanged when images and range are scaled together, so the paired
    implementations on this linear image give exactly the normalized-scale values with data range 2.
    """
    scale = DATA_RANGE_HU / NORMALIZED_RANGE
    return (torch.from_numpy(np.asarray(normalized, dtype=np.float64)) + 1.0) * scale + HU_RANGE[0]


def cycle_metrics(cycled: np.ndarray, original: np.ndarray, mask: np.ndarray,
                  device: torch.device) -> dict[str, float]:
    """MAE, PSNR (dB, peak 2) and SSIM (paired recipe, data range 2) of the cycled volume against the original.

    Inputs (X, Y, Z) normalized to [-1, 1] and a bool mask; metrics inside the mask.
    """
    if min(mask.shape) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs at least {SSIM_WINDOW} voxels along each axis, got shape {tuple(mask.shape)}")
    cycled_hu, original_hu = _on_hu_scale(cycled).to(device), _on_hu_scale(original).to(device)
    inside = torch.from_numpy(np.asarray(mask, dtype=bool)).to(device)
    error = np.abs(cycled.astype(np.float64) - original)[mask]
    return {"cycle_mae": float(error.mean()),
            "cycle_psnr": psnr_db(cycled_hu[inside], original_hu[inside]),
            "cycle_ssim": masked_ssim(cycled_hu, original_hu, inside)}


def changed_region(translated: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Voxels the translation changed most: |translated - source| above the body's 95th percentile, dilated.

    A voxel counts as changed when it is in the body and its absolute change exceeds the
    (1 - `CHANGED_FRACTION`) quantile of the changes inside the body (strictly, so a uniform change
    marks nothing); the region is then grown by a ball of radius `CHANGED_MARGIN_VOXELS` voxels.
    Returns an (X, Y, Z) bool array.
    """
    change = np.abs(translated.astype(np.float64) - source)
    threshold = np.quantile(change[mask], 1.0 - CHANGED_FRACTION)
    changed = mask & (change > threshold)
    offsets = np.indices((2 * CHANGED_MARGIN_VOXELS + 1,) * 3) - CHANGED_MARGIN_VOXELS
    ball = (offsets**2).sum(0) <= CHANGED_MARGIN_VOXELS**2
    return ndimage.binary_dilation(changed, structure=ball)


def anatomy_mae(translated: np.ndarray, source: np.ndarray, mask: np.ndarray) -> float:
    """Mean |translated - source| over the body outside `changed_region`; NaN when nothing is left."""
    kept = mask & ~changed_region(translated, source, mask)
    if not kept.any():
        return math.nan
    return float(np.abs(translated.astype(np.float64) - source)[kept].mean())


def histogram_distance(image: np.ndarray, mask: np.ndarray, reference_values: np.ndarray) -> float:
    """1-Wasserstein distance between the body intensities of ``image`` and ``reference_values`` (normalized units)."""
    return float(wasserstein_distance(image[mask], reference_values))


def translate_fn(translator: Translator) -> Translate:
    """A normalized volume -> normalized volume function applying ``translator`` as inference does."""

    def translate(volume: np.ndarray) -> np.ndarray:
        return translate_volume(translator.generator, volume, device=translator.device,
                                amp_dtype=translator.amp_dtype, **translator.view_settings)

    return translate


def judged_domain(classifier: FittedClassifier, image: np.ndarray, mask: np.ndarray, domain: str) -> float:
    """Fraction of the body slices of ``image`` the classifier assigns to ``domain`` ("a" or "b")."""
    judged_b = classifier.judged_b(image, mask)
    return judged_b if domain == "b" else 1.0 - judged_b


def evaluate_volume(volume: DomainVolume, target: str, forward: Translate, backward: Translate,
                    classifier: FittedClassifier, target_values: np.ndarray,
                    device: torch.device) -> dict[str, float]:
    """Every metric of one source volume translated to domain ``target`` (and back, for the cycle)."""
    translated = forward(volume.image)
    cycled = backward(translated)
    return {**cycle_metrics(cycled, volume.image, volume.mask, device),
            "anatomy_mae": anatomy_mae(translated, volume.image, volume.mask),
            "judged_target": judged_domain(classifier, translated, volume.mask, target),
            "judged_target_input": judged_domain(classifier, volume.image, volume.mask, target),
            "wasserstein": histogram_distance(translated, volume.mask, target_values),
            "wasserstein_input": histogram_distance(volume.image, volume.mask, target_values)}


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """metrics.csv text: subject, direction, then `METRIC_NAMES`; undefined values are ``NaN``, infinite ``inf``."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["subject", "direction", *METRIC_NAMES])
    for row in rows:
        writer.writerow([row["subject"], row["direction"], *(repr(float(row[name])) for name in METRIC_NAMES)])
    return text.getvalue()


def _mean_judged_b(classifier: FittedClassifier, volumes: list[DomainVolume]) -> float:
    scores = [classifier.judged_b(v.image, v.mask) for v in volumes]
    return float(np.nanmean(scores)) if scores else math.nan


def fit_classifier(preprocessed_dir: Path, manifest: dict, train_ids: list[str], translator: Translator,
                   device: torch.device, steps: int = CLASSIFIER_STEPS) -> FittedClassifier:
    """The domain classifier, trained on the training split's real volumes along the run's slice axis."""
    cfg = translator.cfg
    volumes = {d: domain_volumes(preprocessed_dir, manifest, train_ids, d) for d in ("a", "b")}
    for domain, found in volumes.items():
        if not found:
            raise MedtransError(f"{preprocessed_dir}: no usable training subject of domain {domain.upper()} "
                                f"to train the domain classifier on")
    return train_domain_classifier([(v.image, v.mask) for v in volumes["a"]], [(v.image, v.mask) for v in volumes["b"]],
                                   steps=steps, seed=cfg.seed, device=device,
                                   axis=AXIS_INDEX[cfg.dataset.axis], min_body_fraction=cfg.dataset.min_body_fraction)


def preprocessed_folder(run_dir: Path, cfg: Config) -> Path:
    """The run's preprocessed cohort: the config's (shared) ``preprocessed_dir``, else ``<run_dir>/preprocessed``."""
    return Path(cfg.preprocessed_dir) if cfg.preprocessed_dir else Path(run_dir) / "preprocessed"


def run_relative(path: Path, run_dir: Path) -> str:
    """``path`` relative to the run folder when inside it (summaries stay valid when the run moves)."""
    try:
        return Path(path).resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def evaluate_translators(run_dir: Path, ab: Translator, ba: Translator, out_dir: Path,
                         checkpoint: Path | None = None, classifier_steps: int = CLASSIFIER_STEPS) -> dict[str, Any]:
    """Evaluate generators ``ab`` (A -> B) and ``ba`` (B -> A) on the run's test split (see `evaluate_unpaired_run`)."""
    preprocessed_dir = preprocessed_folder(run_dir, ab.cfg)
    manifest = load_manifest(preprocessed_dir)
    split = load_split(Path(run_dir) / "split.json")
    device = ab.device
    test = {d: domain_volumes(preprocessed_dir, manifest, split.get("test", []), d) for d in ("a", "b")}
    for domain, found in test.items():
        if not found:
            raise MedtransError(f"{Path(run_dir) / 'split.json'}: no usable test subject of domain {domain.upper()}; "
                                f"nothing to evaluate")
    classifier = fit_classifier(preprocessed_dir, manifest, split.get("train", []), ab, device, classifier_steps)
    translators = {"a": translate_fn(ab), "b": translate_fn(ba)}
    rows = []
    for direction, (source, target) in DIRECTIONS.items():
        target_values = np.concatenate([v.image[v.mask] for v in test[target]])
        for volume in tqdm(test[source], desc=f"evaluate {direction}", unit="volume"):
            metrics = evaluate_volume(volume, target, translators[source], translators[target], classifier,
                                      target_values, device)
            rows.append({"subject": volume.subject, "direction": direction, **metrics})
    summary = {
        "n": len(rows),
        "checkpoint": None if checkpoint is None else run_relative(checkpoint, Path(run_dir)),
        "scale": "normalized intensities in [-1, 1] (data range 2)",
        "mask": "body mask of the source volume",
        "definitions": "docs/metrics.md, Unpaired (CycleGAN) evaluation",
        "units": METRIC_UNITS,
        "directions": {direction: {"n": sum(r["direction"] == direction for r in rows),
                                   "metrics": {name: metric_stats([r[name] for r in rows if r["direction"] == direction])
                                               for name in METRIC_NAMES}}
                       for direction in DIRECTIONS},
        "classifier": {"real_a_judged_b": _mean_judged_b(classifier, test["a"]),
                       "real_b_judged_b": _mean_judged_b(classifier, test["b"]),
                       "train_accuracy": classifier.train_accuracy, "steps": classifier_steps},
    }
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / "metrics.csv", metrics_csv(rows))
    summary = json_ready(summary)
    write_text_atomic(out_dir / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary


def check_cyclegan_checkpoint(checkpoint: Path) -> None:
    """Refuse a checkpoint without both CycleGAN generators, naming the file."""
    networks = load_checkpoint(checkpoint).get("networks", {})
    missing = [name for name in ("G_AB", "G_BA") if name not in networks]
    if missing:
        raise CheckpointError(f"{checkpoint}: unpaired evaluation needs a CycleGAN checkpoint with generators G_AB "
                              f"and G_BA; it lacks {', '.join(missing)}")


def evaluate_unpaired_run(run_dir: Path, checkpoint: Path, out_dir: Path, device: str = "auto",
                          classifier_steps: int = CLASSIFIER_STEPS) -> dict[str, Any]:
    """Evaluate a CycleGAN checkpoint on the test split of its run, without ground truth.

    Per test volume and direction (A -> B, then B -> A): cycle-reconstruction MAE / PSNR / SSIM, MAE
    outside the most-changed region ("anatomy kept"), the fraction of body slices a domain classifier
    (trained on the training split) judges to be the target domain, and the Wasserstein distance of
    its body intensities to the pooled real target-domain test volumes; the untranslated input's
    classifier score and distance are given alongside as the "before" values.

    Args:
        run_dir: the run folder: split.json is read, and preprocessed/ unless the checkpoint's config
            names a shared ``preprocessed_dir``.
        checkpoint: a CycleGAN checkpoint (networks G_AB and G_BA).
        out_dir: where metrics.csv and summary.json are written (atomically).
        device: "auto", "cpu", "cuda" or "cuda:N".
        classifier_steps: training steps of the domain classifier.

    Returns:
        The summary written to summary.json (non-finite values as None).

    Raises:
        MedtransError: missing manifest, split or checkpoint, a checkpoint without both generators, or a
            domain without usable training or test subjects.
    """
    checkpoint = Path(checkpoint)
    torch_device = resolve_device(device)
    check_cyclegan_checkpoint(checkpoint)
    ab = Translator.from_checkpoint(checkpoint, torch_device, direction="ab")
    ba = Translator.from_checkpoint(checkpoint, torch_device, direction="ba")
    return evaluate_translators(Path(run_dir), ab, ba, Path(out_dir), checkpoint, classifier_steps)

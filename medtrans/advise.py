"""pix2pix or CycleGAN? Decide from the data: do the two cohorts' subjects really pair up?

Matching file names are only a hint. For subjects whose IDs match, the source scan is registered
onto the target scan, and the registration quality (Mattes mutual information after rigid
registration) is compared with that of deliberately mismatched subjects from the same cohorts.
True pairs register clearly better than strangers; two unrelated cohorts whose files happen to
share names do not, and get CycleGAN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medtrans.errors import MedtransError
from medtrans.io import Volume, read_volume
from medtrans.preprocess.cohort import cohort_subjects
from medtrans.preprocess.register import register_mr_to_ct
from medtrans.preprocess.resample import reorient_and_resample

ADVISE_SPACING_MM = (4.0, 4.0, 4.0)
"""Registration grid for the pairing check: coarse, since only the pairing question is asked."""
PAIR_MARGIN = 1.1
"""A matched pair passes when its metric is this many times better than the best mismatched pair's."""
MIN_PAIRS = 3
"""pix2pix needs at least this many subjects that pass the pairing check."""


@dataclass
class Advice:
    """The recommendation and the evidence behind it."""

    recommendation: str
    reasons: list[str] = field(default_factory=list)
    matched_metrics: dict[str, float] = field(default_factory=dict)
    mismatched_metrics: list[float] = field(default_factory=list)


def cohort_side(source: Path, role: str, domain: str, modality: str) -> dict[str, Path]:
    """Subject -> scan of one side: a paired-layout folder gives its ``role`` scans, else an unpaired cohort."""
    try:
        subjects = cohort_subjects(source, (role,), "paired", None) if is_paired_layout(source) else \
            cohort_subjects(source, ("image",), domain, modality)
    except MedtransError as err:
        raise MedtransError(f"{source}: cannot read the cohort: {err}") from None
    return {s.subject: s.inputs.get(role, s.inputs.get("image")) for s in subjects}


def is_paired_layout(source: Path) -> bool:
    """True for a folder whose subject folders hold both an mr and a ct scan."""
    if not source.is_dir():
        return source.suffix.lower() == ".csv" and {"mr", "ct"} <= set(source.read_text().splitlines()[0].split(","))
    folders = [p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return bool(folders) and all(any(q.name.startswith(("mr", "ct")) for q in f.iterdir()) for f in folders[:3])


def coarse(path: Path, modality: str) -> Volume:
    """The scan resampled to the coarse advise grid."""
    return reorient_and_resample(read_volume(path), "RAS", ADVISE_SPACING_MM, "linear", modality)


def registration_metric(source: Volume, target: Volume) -> float:
    """Mattes MI (lower is better) after rigid registration of ``source`` onto ``target``."""
    result = register_mr_to_ct(target, source, "rigid", iterations=100)
    return float(result.metric_after) if result.metric_after is not None else 0.0


def advise(source_dir: Path, target_dir: Path, source_modality: str = "mr", target_modality: str = "ct",
           max_checks: int = 4) -> Advice:
    """Recommend pix2pix (the cohorts pair up and register) or CycleGAN (they do not)."""
    side_a = cohort_side(source_dir, "mr", "a", source_modality)
    side_b = cohort_side(target_dir, "ct", "b", target_modality)
    common = sorted(set(side_a) & set(side_b))
    advice = Advice("CycleGAN", [f"{len(side_a)} subjects in {source_dir}, {len(side_b)} in {target_dir}",
                                 f"{len(common)} subject IDs appear on both sides"])
    if len(common) < MIN_PAIRS:
        advice.reasons.append(f"fewer than {MIN_PAIRS} subjects pair up by ID, so there are no pairs to learn from")
        return advice
    checked = common[:max_checks]
    sources = {s: coarse(side_a[s], source_modality) for s in checked}
    targets = {s: coarse(side_b[s], target_modality) for s in checked}
    advice.matched_metrics = {s: registration_metric(sources[s], targets[s]) for s in checked}
    shifted = checked[1:] + checked[:1]
    advice.mismatched_metrics = [registration_metric(sources[a], targets[b]) for a, b in zip(checked, shifted)]
    best_stranger = min(advice.mismatched_metrics)
    passing = [s for s, m in advice.matched_metrics.items() if m < PAIR_MARGIN * best_stranger]
    advice.reasons.append(
        f"registered {len(checked)} same-ID pairs and {len(checked)} mismatched pairs: mutual information after "
        f"rigid registration {np.mean(list(advice.matched_metrics.values())):.3f} for same-ID pairs, "
        f"{np.mean(advice.mismatched_metrics):.3f} for mismatched ones (lower is better)")
    advice.reasons.append(f"{len(passing)} of {len(checked)} same-ID pairs register clearly better "
                          f"(by {PAIR_MARGIN:.2f}x) than the best mismatched pair")
    if len(passing) >= min(MIN_PAIRS, len(checked)) and len(passing) >= 0.75 * len(checked):
        advice.recommendation = "pix2pix"
        advice.reasons.append(f"the cohorts are paired: {len(common)} pairs to train pix2pix on (paired "
                              "supervision beats CycleGAN when pairs register well)")
    else:
        advice.reasons.append("same-ID scans register no better than strangers: the names match but the "
                              "scans are not pairs of the same anatomy")
    return advice

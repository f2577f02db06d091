"""Statistics over volumes for summary.json, shared by the paired and unpaired evaluations."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def metric_stats(values: list[float]) -> dict[str, float | int | None]:
    """mean, std (population, ddof 0), median, q1, q3 (linear interpolation) and n of the non-NaN values."""
    kept = np.array([v for v in values if not math.isnan(v)], dtype=np.float64)
    if kept.size == 0:
        return {"mean": None, "std": None, "median": None, "q1": None, "q3": None, "n": 0}
    with np.errstate(invalid="ignore"):  # an infinite PSNR (perfect cycle) makes the spread undefined
        q1, median, q3 = np.percentile(kept, [25, 50, 75])
        return {"mean": float(kept.mean()), "std": float(kept.std()), "median": float(median),
                "q1": float(q1), "q3": float(q3), "n": int(kept.size)}


def json_ready(value: Any) -> Any:
    """``value`` with non-finite floats replaced by None, so the JSON stays standard."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""Invertible intensity normalization to [-1, 1] (formulas in docs/design.md).

CT: a fixed HU window. MR: the configured percentiles inside the body mask, or a z-score inside
the mask scaled by 1/3. Every parameter needed to undo the mapping is returned as plain data, so
`denormalize` inverts it exactly for values inside the clipping range.

Example:
    >>> import numpy as np
    >>> from medtrans.config import PreprocessConfig
    >>> hu = np.array([[[-1024.0, 988.0, 3000.0]]])
    >>> x, params = normalize(hu, None, "ct", PreprocessConfig())
    >>> x.tolist(), params
    ([[[-1.0, 0.0, 1.0]]], {'kind': 'window', 'low': -1024.0, 'high': 3000.0})
    >>> denormalize(x, params).tolist()
    [[[-1024.0, 988.0, 3000.0]]]
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from medtrans.config import PreprocessConfig
from medtrans.errors import MedtransError

# z-scores are divided by this so +-3 standard deviations span [-1, 1].
ZSCORE_SPAN = 3.0


def body_values(array: np.ndarray, mask: Optional[np.ndarray]) -> np.ndarray:
    """Voxel values inside ``mask`` (all voxels when the mask is None or empty)."""
    if mask is None or not mask.any():
        return array.ravel()
    return array[mask]


def normalization_params(array: np.ndarray, mask: Optional[np.ndarray], modality: str,
                         cfg: PreprocessConfig) -> dict:
    """The parameters `normalize` applies: window bounds, percentile values or mean/std."""
    if modality == "ct":
        low, high = cfg.ct_window_hu
        return {"kind": "window", "low": float(low), "high": float(high)}
    if modality != "mr":
        raise ValueError(f"modality must be 'mr' or 'ct', got {modality!r}")
    values = body_values(array, mask).astype(np.float64)
    if cfg.mr_norm == "zscore":
        std = float(values.std())
        if std == 0.0:
            raise MedtransError("MR is constant inside the body mask; cannot z-score normalize it")
        return {"kind": "zscore", "mean": float(values.mean()), "std": std, "span": ZSCORE_SPAN}
    p_low, p_high = np.percentile(values, cfg.mr_percentiles)
    if p_high <= p_low:
        raise MedtransError(
            f"MR percentiles {cfg.mr_percentiles} inside the body mask are equal ({p_low}); "
            "cannot normalize a constant image"
        )
    return {"kind": "percentile", "low": float(p_low), "high": float(p_high),
            "percentiles": [float(p) for p in cfg.mr_percentiles]}


def apply_normalization(array: np.ndarray, params: dict) -> np.ndarray:
    """Map raw intensities to [-1, 1] (float32) with stored ``params`` (float32 arithmetic, like `denormalize`)."""
    values = np.asarray(array, dtype=np.float32)
    if params["kind"] == "zscore":
        scaled = (values - np.float32(params["mean"])) * np.float32(1.0 / (params["std"] * params["span"]))
        return np.clip(scaled, -1.0, 1.0, dtype=np.float32)
    low, high = np.float32(params["low"]), np.float32(params["high"])
    scaled = np.clip(values, low, high)
    scaled -= low
    # The half span in float32 from the float32 bounds, so ``high`` maps to exactly 1.
    scaled /= (high - low) / np.float32(2.0)
    scaled -= np.float32(1.0)
    return scaled


def normalize(array: np.ndarray, mask: Optional[np.ndarray], modality: str,
              cfg: PreprocessConfig) -> tuple[np.ndarray, dict]:
    """Normalize a CT (HU) or MR array to [-1, 1].

    Args:
        array: intensities, any shape (e.g. (X, Y, Z)); CT in HU.
        mask: boolean body mask of the same shape for the MR statistics; None uses every voxel.
        modality: 'ct' (window ``cfg.ct_window_hu``) or 'mr' (``cfg.mr_norm``).
        cfg: the preprocess config section.

    Returns:
        The float32 array in [-1, 1] and the parameters (plain data) to invert it.
    """
    params = normalization_params(array, mask, modality, cfg)
    return apply_normalization(array, params), params


def denormalize(array: np.ndarray, params: dict) -> np.ndarray:
    """Map [-1, 1] values back to HU / MR units (float32), inverting `normalize` with its ``params``.

    Computed in float32: its 24-bit mantissa keeps HU to 1e-3 over the CT window, and the
    full-volume pass costs half of a float64 one.
    """
    values = np.asarray(array, dtype=np.float32)
    if params["kind"] == "zscore":
        raw = values * np.float32(params["std"] * params["span"]) + np.float32(params["mean"])
    elif params["kind"] in ("window", "percentile"):
        half_span = np.float32((params["high"] - params["low"]) / 2.0)
        raw = (values + np.float32(1.0)) * half_span + np.float32(params["low"])
    else:
        raise MedtransError(f"unknown normalization kind {params['kind']!r}; expected window, percentile or zscore")
    return raw.astype(np.float32)


MIN_HU_SPAN = 100.0
"""Below this value span a "CT" holds normalized intensities, not HU (a body CT spans air to bone)."""


def require_ct_in_hu(array: np.ndarray, where: str) -> None:
    """Refuse a CT that is obviously not in HU: no negative values (raw 0..4095 data) or a tiny span."""
    low, high = float(np.min(array)), float(np.max(array))
    if low >= 0:
        raise MedtransError(f"{where}: does not look like a CT in HU: no negative values (min {low:g}, max {high:g}), "
                            "but air is about -1000 HU; convert it to HU (apply the rescale slope and intercept)")
    if high - low < MIN_HU_SPAN:
        raise MedtransError(f"{where}: does not look like a CT in HU: values only span [{low:g}, {high:g}] "
                            "(normalized intensities?)")


"""Volume in, volume out: replay the run's preprocessing, translate, undo it, and land on the input's grid."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from medtrans.infer.translator import Translator
from medtrans.io import Volume
from medtrans.models.apply import translate_volume
from medtrans.preprocess.crop import crop_array, crop_box, uncrop_array
from medtrans.preprocess.masks import body_mask
from medtrans.preprocess.normalize import apply_normalization, denormalize, normalization_params
from medtrans.preprocess.resample import canonical_grid, resample_to_grid

CT_OUTSIDE_HU = -1000.0


@dataclass
class Timing:
    """Seconds spent in the network and in total for one scan."""

    network_s: float = 0.0
    total_s: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)


def target_params(translator: Translator, source_params: dict) -> dict:
    """How to map the generator's [-1, 1] output to target units: the CT window, or the input's MR scale."""
    if translator.target_modality == "ct":
        low, high = translator.cfg.preprocess.ct_window_hu
        return {"kind": "window", "low": float(low), "high": float(high)}
    return source_params


def outside_value(modality: str, synthetic: np.ndarray, background_hu: float) -> float:
    """The value written outside the body: air in HU for CT, the image minimum for MR."""
    return background_hu if modality == "ct" else float(synthetic.min())


def translate_scan(translator: Translator, scan: Volume, mask_outside_body: bool | None = None,
                   timing: Timing | None = None) -> Volume:
    """The synthetic counterpart of ``scan`` on ``scan``'s exact grid (shape, spacing, origin, direction).

    Steps: resample to the run's orientation and spacing; body mask; crop to the body as in
    preprocessing; normalize with the input's own statistics; translate; invert the
    normalization (HU for CT); uncrop; resample back onto the input grid; outside the body
    write air (-1000 HU by default, ``infer.background_hu``) unless ``mask_outside_body`` is False.
    """
    cfg = translator.cfg
    pre = cfg.preprocess
    timing = timing or Timing()
    started = time.perf_counter()
    source, target = translator.source_modality, translator.target_modality
    grid = canonical_grid(scan, pre.orientation, pre.spacing_mm)
    canonical = resample_to_grid(scan, grid, pre.interpolation, source)
    mask = body_mask(canonical, source)
    box = crop_box(mask, grid.spacing_mm, pre.crop_margin_mm, pre.pad_multiple)
    source_background = float(canonical.array.min())
    cropped = crop_array(canonical.array, box, source_background)
    cropped_mask = crop_array(mask, box, False)
    params = normalization_params(cropped, cropped_mask, source, pre)
    normalized = apply_normalization(cropped, params)

    network_started = time.perf_counter()
    synthetic_normalized = translate_volume(translator.generator, normalized, device=translator.device,
                                            amp_dtype=translator.amp_dtype, **translator.view_settings)
    timing.network_s += time.perf_counter() - network_started

    synthetic = denormalize(synthetic_normalized, target_params(translator, params))
    background = outside_value(target, synthetic, cfg.infer.background_hu)
    synthetic_canonical = canonical.with_array(uncrop_array(synthetic, box, background))
    on_input = resample_to_grid(synthetic_canonical, scan, "linear", target if target == "ct" else "mr").array
    if cfg.infer.mask_outside_body if mask_outside_body is None else mask_outside_body:
        body_on_input = resample_to_grid(canonical.with_array(mask.astype(np.uint8)), scan, kind="label").array > 0
        on_input = np.where(body_on_input, on_input, background)
    if target == "ct":
        on_input = np.round(on_input).astype(np.int16)
    timing.total_s += time.perf_counter() - started
    return scan.with_array(on_input.astype(on_input.dtype, copy=False),
                           modality=target.upper(), synthetic=True)

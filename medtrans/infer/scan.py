"""Volume in, volume out: replay the run's preprocessing, translate, undo it, and land on the input's grid."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from medtrans.infer.translator import Translator
from medtrans.io import Volume
from medtrans.models.apply import translate_volume
from medtrans.preprocess.crop import uncrop
from medtrans.preprocess.normalize import denormalize
from medtrans.preprocess.pipeline import prepare_single
from medtrans.preprocess.resample import resample_to_grid

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

    Steps: the run's preprocessing of a single scan (`prepare_single`: resample to the run's
    orientation and spacing, body mask, crop to the body, normalize with the input's own
    statistics); translate; invert the normalization (HU for CT); uncrop; resample back onto the
    input grid; outside the body write air (-1000 HU by default, ``infer.background_hu``) unless
    ``mask_outside_body`` is False.
    """
    cfg = translator.cfg
    timing = timing or Timing()
    started = time.perf_counter()
    target = translator.target_modality
    prepared = prepare_single(scan, translator.source_modality, cfg.preprocess)

    network_started = time.perf_counter()
    synthetic_normalized = translate_volume(translator.generator, prepared.image.array, device=translator.device,
                                            amp_dtype=translator.amp_dtype, **translator.view_settings)
    timing.network_s += time.perf_counter() - network_started

    synthetic = denormalize(synthetic_normalized, target_params(translator, prepared.normalization))
    background = outside_value(target, synthetic, cfg.infer.background_hu)
    synthetic_canonical = uncrop(prepared.image.with_array(synthetic), prepared.box, background)
    on_input = resample_to_grid(synthetic_canonical, scan, "linear", target).array
    if cfg.infer.mask_outside_body if mask_outside_body is None else mask_outside_body:
        body_on_input = resample_to_grid(uncrop(prepared.mask, prepared.box, 0), scan, kind="label").array > 0
        on_input = np.where(body_on_input, on_input, background)
    if target == "ct":
        on_input = np.round(on_input).astype(np.int16)
    timing.total_s += time.perf_counter() - started
    return scan.with_array(on_input, modality=target.upper(), synthetic=True)

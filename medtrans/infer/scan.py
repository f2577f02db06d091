"""Volume in, volume out: replay the run's preprocessing, translate, undo it, and land on the input's grid."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from medtrans.infer.translator import Translator
from medtrans.io import Volume
from medtrans.models.apply import translate_volume
from medtrans.preprocess.normalize import denormalize
from medtrans.preprocess.pipeline import prepare_single
from medtrans.preprocess.resample import resample_with_mask

CT_OUTSIDE_HU = -1000.0


@dataclass
class Timing:
    """Seconds spent in the network, in total, and per step (accumulated over scans)."""

    total_s: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    @property
    def network_s(self) -> float:
        """Seconds in the generator's forward passes."""
        return self.steps.get("network", 0.0)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Add the seconds spent in the ``with`` block to ``steps[name]``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - started


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
    statistics); translate; invert the normalization (HU for CT); resample back onto the input
    grid together with the body mask; outside the body write air (-1000 HU by default,
    ``infer.background_hu``) unless ``mask_outside_body`` is False.
    """
    cfg = translator.cfg
    timing = timing or Timing()
    started = time.perf_counter()
    target = translator.target_modality
    with timing.step("prepare"):
        prepared = prepare_single(scan, translator.source_modality, cfg.preprocess)
    with timing.step("network"):
        synthetic_normalized = translate_volume(translator.generator, prepared.image.array, device=translator.device,
                                                amp_dtype=translator.amp_dtype, **translator.view_settings)
    with timing.step("restore"):
        synthetic = denormalize(synthetic_normalized, target_params(translator, prepared.normalization))
        background = outside_value(target, synthetic, cfg.infer.background_hu)
        # The cropped volume is resampled directly: input voxels outside its box get the background,
        # as they would from the uncropped one, without building the full canonical grid.
        on_input, body_on_input = resample_with_mask(prepared.image.with_array(synthetic), prepared.mask.array > 0,
                                                     scan, background)
        # In place: a 512 x 512 x 300 input makes each new float32 copy cost 0.1-0.2 s.
        if cfg.infer.mask_outside_body if mask_outside_body is None else mask_outside_body:
            np.copyto(on_input, np.float32(background), where=~body_on_input)
        if target == "ct":
            on_input = np.rint(on_input, out=on_input).astype(np.int16)
    timing.total_s += time.perf_counter() - started
    return scan.with_array(on_input, modality=target.upper(), synthetic=True)

"""Preprocessing: canonical grid, MR-to-CT registration, body masks, crop/pad, normalization.

Per-volume functions that later stages (inference, evaluation) replay:

- `reorient_and_resample(vol, orientation, spacing_mm, interpolation, modality)` / `canonical_grid`,
  `resample_to_grid(vol, grid, interpolation, kind, transform)`
- `body_mask(vol, modality)` (``medtrans.preprocess.masks``)
- `crop_box(mask, spacing_mm, margin_mm, pad_multiple)`, `apply_crop(vol, box, fill)`,
  `uncrop(vol, box, fill)`
- `normalize(array, mask, modality, cfg)` / `denormalize(array, params)`
- `register_mr_to_ct(ct, mr, method, iterations, sampling, seed)`

and the cohort stage, `run_preprocess(cfg, out_dir, workers, shard)` (``medtrans preprocess``).
"""

from medtrans.preprocess.crop import CropBox, apply_crop, crop_box, uncrop
from medtrans.preprocess.masks import body_mask
from medtrans.preprocess.normalize import denormalize, normalize
from medtrans.preprocess.register import RegistrationResult, register_mr_to_ct
from medtrans.preprocess.resample import Grid, canonical_grid, reorient_and_resample, resample_to_grid
from medtrans.preprocess.stage import run_preprocess

__all__ = [
    "CropBox", "Grid", "RegistrationResult", "apply_crop", "body_mask", "canonical_grid", "crop_box",
    "denormalize", "normalize", "register_mr_to_ct", "reorient_and_resample", "resample_to_grid",
    "run_preprocess", "uncrop",
]

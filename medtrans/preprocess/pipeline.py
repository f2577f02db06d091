"""Preprocess one subject: a paired MR + CT, or one unpaired scan, into the preprocessed folder.

Paired: the CT is reoriented and resampled to the canonical grid; the MR is registered onto it
and resampled onto the same grid through the transform; the CT body mask is the pair's mask;
all three are cropped/padded to the body box and the images normalized to [-1, 1]. The raw MR is
also resampled onto the original CT grid (``mr_on_ct``) for inference and evaluation. Quality:
the mutual information and body-mask Dice of the MR against the CT before (scanner world) and
after registration, which the stage's quality gates judge. Unpaired: the same steps without
registration.

Outputs are written atomically; the caller writes the subject's record last.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medtrans.config import PreprocessConfig
from medtrans.errors import MedtransError
from medtrans.io import Volume, atomic_path, read_volume, write_volume
from medtrans.preprocess.cohort import Subject
from medtrans.preprocess.crop import CropBox, apply_crop, crop_array, crop_box
from medtrans.preprocess.masks import body_mask
from medtrans.preprocess.normalize import normalize, require_ct_in_hu
from medtrans.preprocess.register import assess_alignment, register_mr_to_ct
from medtrans.preprocess.resample import background_value, reorient_and_resample, resample_to_grid


@dataclass(frozen=True)
class PreparedScan:
    """One scan on its cropped canonical grid: normalized image, body mask and how they were made."""

    image: Volume
    mask: Volume
    normalization: dict
    box: CropBox


def crop_and_normalize(vol: Volume, stats_mask: np.ndarray, box: CropBox, modality: str,
                       cfg: PreprocessConfig) -> tuple[Volume, dict]:
    """Crop/pad ``vol`` to ``box`` and normalize it, with MR statistics taken inside ``stats_mask``."""
    cropped = apply_crop(vol, box, background_value(vol, modality))
    array, params = normalize(cropped.array, crop_array(stats_mask, box, False), modality, cfg)
    return cropped.with_array(array), params


def prepare_single(vol: Volume, modality: str, cfg: PreprocessConfig) -> PreparedScan:
    """Canonical grid, body mask, crop/pad and normalization of one unpaired scan."""
    canonical = reorient_and_resample(vol, cfg.orientation, cfg.spacing_mm, cfg.interpolation, modality)
    mask = body_mask(canonical, modality)
    if not mask.any():
        raise MedtransError(f"no body found in the {modality.upper()} scan (is it blank, or a CT not in HU?)")
    box = crop_box(mask, canonical.spacing_mm, cfg.crop_margin_mm, cfg.pad_multiple)
    image, params = crop_and_normalize(canonical, mask, box, modality, cfg)
    mask_vol = apply_crop(canonical.with_array(mask.astype(np.uint8)), box, 0)
    return PreparedScan(image, mask_vol, params, box)


@dataclass(frozen=True)
class PreparedPair:
    """A registered pair on the CT's cropped canonical grid, plus what was measured on the way."""

    ct: PreparedScan
    mr: Volume
    mr_normalization: dict
    mr_on_ct: Volume
    transform: sitk.Transform
    registration: dict


def prepare_pair(mr: Volume, ct: Volume, cfg: PreprocessConfig, seed: int) -> PreparedPair:
    """Register ``mr`` onto ``ct``, bring both to the CT's canonical grid, crop and normalize them."""
    ct_canonical = reorient_and_resample(ct, cfg.orientation, cfg.spacing_mm, cfg.interpolation, "ct")
    ct_mask = body_mask(ct_canonical, "ct")
    if not ct_mask.any():
        raise MedtransError("no body found in the CT (is it blank, or not in HU?)")
    if cfg.register == "none":
        result = assess_alignment(ct_canonical, mr)
    else:
        result = register_mr_to_ct(ct_canonical, mr, cfg.register, cfg.registration_iterations,
                                   cfg.registration_sampling, seed)
    mr_on_grid = resample_to_grid(mr, ct_canonical, cfg.interpolation, "mr", result.transform)
    box = crop_box(ct_mask, ct_canonical.spacing_mm, cfg.crop_margin_mm, cfg.pad_multiple)
    ct_image, ct_params = crop_and_normalize(ct_canonical, ct_mask, box, "ct", cfg)
    # MR statistics come from the body inside the MR's field of view: where that ends inside the
    # CT body, the CT mask alone would count empty voxels.
    mr_image, mr_params = crop_and_normalize(mr_on_grid, ct_mask & field_of_view(mr, ct_canonical, result.transform),
                                             box, "mr", cfg)
    registration = {"method": result.method, "metric_before": result.metric_before, "metric_after": result.metric_after,
                    "dice_before": result.dice_before, "dice_after": result.dice_after}
    return PreparedPair(
        ct=PreparedScan(ct_image, apply_crop(ct_canonical.with_array(ct_mask.astype(np.uint8)), box, 0), ct_params, box),
        mr=mr_image,
        mr_normalization=mr_params,
        mr_on_ct=resample_to_grid(mr, ct, cfg.interpolation, "mr", result.transform),
        transform=result.transform,
        registration=registration,
    )


def field_of_view(vol: Volume, grid: Volume, transform: sitk.Transform) -> np.ndarray:
    """Boolean mask of the voxels of ``grid`` that ``transform`` maps inside ``vol``'s field of view."""
    ones = vol.with_array(np.ones(vol.shape, dtype=np.uint8))
    return resample_to_grid(ones, grid, kind="label", transform=transform).array > 0


def write_transform(transform: sitk.Transform, path: Path) -> None:
    """Write an ITK transform file atomically."""
    with atomic_path(path) as tmp:
        sitk.WriteTransform(transform, str(tmp))


def scan_facts(scan: PreparedScan) -> dict:
    """Record fields shared by paired and unpaired subjects."""
    return {
        "shape": list(scan.image.shape),
        "spacing_mm": list(scan.image.spacing_mm),
        "origin_mm": list(scan.image.origin_mm),
        "orientation": scan.image.orientation,
        "crop": scan.box.to_dict(),
    }


def process_pair(subject: Subject, cfg: PreprocessConfig, seed: int, out_dir: Path) -> dict:
    """Preprocess and write one paired subject; returns its record fields (no status yet)."""
    mr, ct = read_volume(subject.inputs["mr"]), read_volume(subject.inputs["ct"])
    require_ct_in_hu(ct.array, str(subject.inputs["ct"]))
    pair = prepare_pair(mr, ct, cfg, seed)
    key = subject.key
    files = {"mr": f"{key}/mr.nii.gz", "ct": f"{key}/ct.nii.gz", "mask": f"{key}/body_mask.nii.gz",
             "mr_on_ct": f"{key}/mr_on_ct.nii.gz", "transform": f"{key}/mr_to_ct.tfm"}
    write_volume(pair.ct.image, out_dir / files["ct"])
    write_volume(pair.mr, out_dir / files["mr"])
    write_volume(pair.ct.mask, out_dir / files["mask"])
    write_volume(pair.mr_on_ct, out_dir / files["mr_on_ct"])
    registration = dict(pair.registration)
    registration["transform"] = None
    if cfg.register != "none":
        write_transform(pair.transform, out_dir / files["transform"])
        registration["transform"] = files["transform"]
    return {
        "patient_mismatch": patient_mismatch(mr, ct),
        "images": {"mr": files["mr"], "ct": files["ct"]},
        "mask": files["mask"],
        **scan_facts(pair.ct),
        "normalization": {"mr": pair.mr_normalization, "ct": pair.ct.normalization},
        "registration": registration,
        "mr_on_ct": files["mr_on_ct"],
    }


def patient_mismatch(mr: Volume, ct: Volume) -> bool:
    """True when both scans are DICOM with different PatientIDs (the IDs themselves are never stored)."""
    ids = [(vol.meta.get("dicom_identity") or {}).get("PatientID") for vol in (mr, ct)]
    return bool(all(ids) and ids[0] != ids[1])


def process_single(subject: Subject, cfg: PreprocessConfig, out_dir: Path) -> dict:
    """Preprocess and write one unpaired subject; returns its record fields (no status yet)."""
    image = read_volume(subject.inputs["image"])
    if subject.modality == "ct":
        require_ct_in_hu(image.array, str(subject.inputs["image"]))
    scan = prepare_single(image, subject.modality or "mr", cfg)
    key = subject.key
    files = {"image": f"{key}/image.nii.gz", "mask": f"{key}/body_mask.nii.gz"}
    write_volume(scan.image, out_dir / files["image"])
    write_volume(scan.mask, out_dir / files["mask"])
    return {
        "modality": subject.modality,
        "images": {"image": files["image"]},
        "mask": files["mask"],
        **scan_facts(scan),
        "normalization": {"image": scan.normalization},
        "registration": None,
        "mr_on_ct": None,
    }

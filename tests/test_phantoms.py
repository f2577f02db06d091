"""Phantoms: determinism, plausible HU and T1 contrast, distinct grids, the recorded true transform,
lesions only in pathology and inside the brain, and the `medtrans sample-data` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from medtrans import phantoms
from medtrans.cli import main
from medtrans.io import Volume, read_volume
from medtrans.phantoms import Tissue


def resample_onto(moving: Volume, fixed: Volume, transform: sitk.Transform, outside: float = -1.0) -> np.ndarray:
    """``moving`` on ``fixed``'s grid (linear), float32 (X, Y, Z); ``outside`` beyond its field of view."""
    image = sitk.Resample(moving.to_sitk(), fixed.to_sitk(), transform, sitk.sitkLinear, outside, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(image).transpose(2, 1, 0)


def filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with enclosed holes filled in 3D and in every axial slice (airways open at the FOV edge)."""
    mask = ndimage.binary_fill_holes(mask)
    for k in range(mask.shape[2]):
        mask[:, :, k] = ndimage.binary_fill_holes(mask[:, :, k])
    return mask


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks."""
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def true_transform(truth: dict) -> sitk.Euler3DTransform:
    """The CT (fixed) -> MR (moving) transform rebuilt from its Euler parameters in truth.json."""
    transform = sitk.Euler3DTransform(truth["center_mm"], *truth["euler_angles_rad"], truth["translation_mm"])
    transform.SetComputeZYX(truth["compute_zyx"])
    return transform


@pytest.fixture(scope="module")
def paired() -> tuple[Volume, Volume, dict]:
    """One small paired subject (mr, ct, truth)."""
    return phantoms.make_paired_subject(11, "small")


@pytest.fixture(scope="module")
def ct_head(paired) -> np.ndarray:
    """The CT's head mask (above -500 HU, holes filled)."""
    return filled(paired[1].array > -500)


def test_same_seed_gives_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        phantoms.write_cohorts(tmp_path / name, n_paired=1, n_unpaired=1, size="tiny", seed=4, n_dicom=0)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 7  # mr, ct, truth, healthy image, pathology image + lesion, cohorts.json
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    mr_a, ct_a, truth_a = phantoms.make_paired_subject(4, "tiny")
    mr_b, ct_b, truth_b = phantoms.make_paired_subject(5, "tiny")
    assert not np.array_equal(ct_a.array, ct_b.array)
    assert truth_a["fixed_to_moving"] != truth_b["fixed_to_moving"]


def test_ct_holds_plausible_hu(paired, ct_head) -> None:
    ct_hu = paired[1].array
    assert ct_hu.dtype == np.int16
    assert np.all(ct_hu[~ndimage.binary_dilation(ct_head, iterations=4)] == -1000)
    inside = ct_hu[ct_head]
    fractions = {
        "air": float(np.mean(ct_hu < -900)),
        "soft": float(np.mean((inside > -20) & (inside < 80))),
        "fat": float(np.mean((inside > -140) & (inside < -60))),
        "bone": float(np.mean(inside > 300)),
    }
    assert 0.4 < fractions["air"] < 0.8, fractions
    assert 0.45 < fractions["soft"] < 0.85, fractions
    assert 0.01 < fractions["fat"] < 0.25, fractions
    assert 0.08 < fractions["bone"] < 0.35, fractions
    assert 1200 < np.percentile(inside, 99.9) < 2300
    sinus_air = ndimage.binary_erosion(ct_head, iterations=4) & (ct_hu < -900)
    assert sinus_air.sum() > 50  # air cavities inside the head
    # Noise: differences of x-neighbours in brain-like voxels, robust (MAD) estimate of ~10 HU.
    soft = (ct_hu[1:] > 0) & (ct_hu[1:] < 60) & (ct_hu[:-1] > 0) & (ct_hu[:-1] < 60)
    steps = np.diff(ct_hu.astype(np.float32), axis=0)[soft]
    assert 5.0 < 1.4826 * np.median(np.abs(steps - np.median(steps))) < 16.0


def test_mr_is_dark_in_bone_and_air_bright_in_brain(paired, ct_head) -> None:
    mr, ct, truth = paired
    mr_on_ct = resample_onto(mr, ct, true_transform(truth))
    reference = np.percentile(mr.array, 99)
    deep = ndimage.distance_transform_edt(ct_head, sampling=ct.spacing_mm) > 4.0
    bone = ndimage.binary_erosion(ct.array > 700) & (mr_on_ct >= 0)
    sinus = ndimage.binary_erosion(deep & (ct.array < -900)) & (mr_on_ct >= 0)
    brain = (ndimage.distance_transform_edt(ct_head, sampling=ct.spacing_mm) > 30.0) & (ct.array > 15) & (ct.array < 60)
    outside = ~ndimage.binary_dilation(ct_head, iterations=5) & (mr_on_ct >= 0)
    assert bone.sum() > 500 and sinus.sum() > 20 and brain.sum() > 1000
    brain_level = np.mean(mr_on_ct[brain])
    assert brain_level > 0.4 * reference
    assert np.mean(mr_on_ct[bone]) < 0.3 * brain_level
    assert np.mean(mr_on_ct[sinus]) < 0.15 * brain_level
    assert np.mean(mr_on_ct[outside]) < 0.1 * brain_level


def test_mr_and_ct_grids_differ(paired) -> None:
    mr, ct, _ = paired
    assert mr.shape != ct.shape
    assert not np.allclose(mr.spacing_mm, ct.spacing_mm)
    assert not np.allclose(mr.direction, ct.direction)
    extent = lambda vol: np.asarray(vol.shape) * np.asarray(vol.spacing_mm)  # noqa: E731
    assert not np.allclose(extent(mr), extent(ct), atol=5.0)
    assert mr.array.dtype == np.int16 and mr.array.min() >= 0


def test_truth_transform_lines_up_mr_with_ct(paired, ct_head) -> None:
    mr, ct, truth = paired
    transform = true_transform(truth)
    matrix = np.asarray(truth["fixed_to_moving"])
    assert np.allclose(phantoms.transform_matrix(transform), matrix, atol=1e-9)
    assert np.allclose(np.asarray(truth["moving_to_fixed"]) @ matrix, np.eye(4), atol=1e-9)
    assert 0 < truth["rotation_deg"] <= 10.0 and 0 < truth["translation_norm_mm"] <= 10.0
    # A CT world point maps through the matrix to where SimpleITK sends it.
    point = np.array([12.0, -30.0, 25.0])
    assert np.allclose(transform.TransformPoint(point.tolist()), (matrix @ np.append(point, 1))[:3])
    smoothed = mr.with_array(ndimage.gaussian_filter(mr.array.astype(np.float32), 1.0))
    threshold = 0.25 * np.percentile(mr.array, 99)
    bone = ndimage.binary_erosion(ct.array > 700)
    scores = {}
    for name, candidate in (("truth", transform), ("identity", sitk.Transform())):
        mr_on_ct = resample_onto(smoothed, ct, candidate)
        covered = mr_on_ct >= 0
        mr_head = filled(mr_on_ct > threshold)
        scores[name] = (dice(ct_head[covered], mr_head[covered]),
                        float(np.mean(mr_on_ct[bone & covered] < 0.3 * np.percentile(mr.array, 99))))
    assert scores["truth"][0] > 0.97, scores
    assert scores["identity"][0] < scores["truth"][0] - 0.01, scores
    assert scores["truth"][1] > 0.95 and scores["identity"][1] < scores["truth"][1] - 0.1, scores


def test_head_fits_the_training_grid(ct_head, paired) -> None:
    ct = paired[1]
    corners = np.argwhere(ct_head)
    extent_mm = (corners.max(0) - corners.min(0) + 1) * np.asarray(ct.spacing_mm)
    assert np.all(extent_mm > 125) and np.all(extent_mm < 200), extent_mm


def test_lesions_only_in_pathology_and_inside_the_brain() -> None:
    healthy, none = phantoms.make_unpaired_subject(21, pathology=False)
    assert none is None
    image, lesion = phantoms.make_unpaired_subject(21, pathology=True)
    assert lesion.same_grid(image) and lesion.array.dtype == np.uint8
    assert set(np.unique(lesion.array)) == {0, phantoms.LESION_MASS, phantoms.LESION_EDEMA}
    # The healthy twin (same seed) has the same head and grid: the lesion lies in its brain.
    draw = phantoms.draw_unpaired(np.random.default_rng(21), pathology=True, size="small")
    twin_labels = phantoms.label_grid(draw.anatomy, draw.grid, draw.world_to_anatomy)
    intracranial = np.isin(twin_labels, (Tissue.CSF, Tissue.GREY_MATTER, Tissue.WHITE_MATTER, Tissue.DEEP_GREY))
    assert np.all(intracranial[lesion.array > 0])
    head = filled(twin_labels != Tissue.AIR)
    depth_mm = ndimage.distance_transform_edt(head, sampling=image.spacing_mm)
    assert depth_mm[lesion.array > 0].min() > 8.0
    # Visibly different: edema darker than white matter, the mass far from it.
    labels = phantoms.label_grid(draw.anatomy, draw.grid, draw.world_to_anatomy, draw.lesion)
    white = ndimage.binary_erosion(labels == Tissue.WHITE_MATTER)
    white_level = np.median(image.array[white])
    mass, edema = lesion.array == phantoms.LESION_MASS, lesion.array == phantoms.LESION_EDEMA
    assert np.mean(image.array[edema]) < 0.9 * white_level
    assert np.mean(np.abs(image.array[mass] - white_level)) > 0.25 * white_level


def test_cli_writes_a_cohort(tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    assert main(["sample-data", str(out), "--size", "tiny", "--n-paired", "2", "--n-unpaired", "1", "--seed", "7"]) == 0
    for sid in ("p01", "p02"):
        mr, ct = read_volume(out / "paired" / sid / "mr.nii.gz"), read_volume(out / "paired" / sid / "ct.nii.gz")
        assert ct.array.min() >= -1024 and ct.array.max() > 1000 and not mr.same_grid(ct)
        assert len(json.loads((out / "paired" / sid / "truth.json").read_text())["fixed_to_moving"]) == 4
    assert read_volume(out / "unpaired" / "healthy" / "h01" / "image.nii.gz").array.max() > 0
    assert read_volume(out / "unpaired" / "pathology" / "d01" / "lesion.nii.gz").array.max() == phantoms.LESION_EDEMA
    record = json.loads((out / "cohorts.json").read_text())
    assert [s["subject"] for s in record["subjects"]] == ["p01", "p02", "h01", "d01"]
    if record["dicom"]:
        dicom_ct = read_volume(out / "dicom" / "p01" / "ct")
        nifti_ct = read_volume(out / "paired" / "p01" / "ct.nii.gz")
        assert dicom_ct.same_grid(nifti_ct, tol=1e-3) and np.array_equal(dicom_ct.array, nifti_ct.array)
    assert main(["sample-data", str(out), "--size", "tiny", "--n-paired", "1", "--n-unpaired", "0"]) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "scan.nii.gz").write_bytes(b"")
    assert main(["sample-data", str(foreign), "--size", "tiny"]) == 2


def test_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="size must be one of"):
        phantoms.make_paired_subject(0, size="huge")


@pytest.mark.slow
def test_full_size_volumes() -> None:
    mr, ct, truth = phantoms.make_paired_subject(0, "full")
    assert ct.shape == (256, 256, 180) and ct.spacing_mm == (1.0, 1.0, 1.0)
    assert max(mr.spacing_mm) <= 1.2 and min(mr.shape) >= 180

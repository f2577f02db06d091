"""Metric values against a direct scikit-image computation of the SynthRAD2023 recipe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

from medtrans.device import resolve_device
from medtrans.errors import MedtransError
from medtrans.evaluate.metrics import METRIC_NAMES, ssim_map, volume_metrics
from medtrans.io import read_volume

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


def reference_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """MAE, PSNR and SSIM exactly as the SynthRAD2023 evaluation code computes them (numpy + scikit-image)."""
    pred, target = pred.astype(np.float64), target.astype(np.float64)
    mae = np.abs(pred - target)[mask].mean()
    pred_c, target_c = np.clip(pred, -1024, 3000), np.clip(target, -1024, 3000)
    psnr = peak_signal_noise_ratio(target_c[mask], pred_c[mask], data_range=4024)
    pred_s = np.where(mask, pred_c, -1024.0) + 1024
    target_s = np.where(mask, target_c, -1024.0) + 1024
    _, full_map = structural_similarity(target_s, pred_s, data_range=4024, full=True)
    ssim = crop(full_map, 3)[crop(mask, 3)].mean(dtype=np.float64)
    return {"mae": mae, "psnr": psnr, "ssim": ssim}


@pytest.fixture(scope="module")
def structured_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A smoothed random "CT" (air, soft tissue, bone; some values beyond 3000 HU), a noisy
    synthetic version of it, and an ellipsoid mask, on a non-cubic (36, 30, 24) grid."""
    rng = np.random.default_rng(7)
    shape = (36, 30, 24)
    target = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    target = (target / target.std() * 900.0 + 100.0).astype(np.float32)
    target[5:9, 5:9, 5:9] = 3500.0
    pred = target + ndimage.gaussian_filter(rng.normal(size=shape), 1.0) * 600.0 + rng.normal(size=shape) * 150.0
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    mask = (grid**2).sum(0) < 0.8
    return pred.astype(np.float32), target, mask


@pytest.mark.parametrize("device", DEVICES)
def test_metrics_match_scikit_image(structured_pair, device):
    pred, target, mask = structured_pair
    ours = volume_metrics(pred, target, mask, device=device)
    ref = reference_metrics(pred, target, mask)
    # Both sides are float64, so far tighter than the 1e-4 required: dropping the sample-covariance
    # factor moves this SSIM by only 3.5e-6.
    assert ours["mae"] == pytest.approx(ref["mae"], abs=1e-6)
    assert ours["psnr"] == pytest.approx(ref["psnr"], abs=1e-6)
    assert ours["ssim"] == pytest.approx(ref["ssim"], abs=1e-7)
    assert 0.2 < ours["ssim"] < 0.99  # a non-trivial value, not a degenerate 1.0 or 0
    assert list(ours) == list(METRIC_NAMES)


@pytest.mark.parametrize("box", [(slice(0, 10), slice(2, 30), slice(17, 24)), (slice(20, 23), slice(5, 7), slice(9, 10))])
def test_masks_at_the_border_and_tiny_masks_match_scikit_image(structured_pair, box):
    """Boxes touching the volume's faces and a 3 x 2 x 1 box: the window's reach and border crop."""
    pred, target, _ = structured_pair
    mask = np.zeros(target.shape, bool)
    mask[box] = True
    ours, ref = volume_metrics(pred, target, mask), reference_metrics(pred, target, mask)
    assert [ours[k] for k in ref] == pytest.approx(list(ref.values()), abs=1e-9)


def test_mask_only_in_the_border_has_no_ssim(structured_pair):
    pred, target, _ = structured_pair
    mask = np.zeros(target.shape, bool)
    mask[:3, :, :] = True  # all inside the 3-voxel border that SSIM drops
    m = volume_metrics(pred, target, mask)
    assert math.isnan(m["ssim"]) and m["mae"] > 0


def test_torch_and_numpy_inputs_agree(structured_pair):
    pred, target, mask = structured_pair
    from_numpy = volume_metrics(pred, target, mask)
    from_torch = volume_metrics(torch.from_numpy(pred), torch.from_numpy(target), torch.from_numpy(mask))
    assert from_torch == pytest.approx(from_numpy, rel=1e-12, nan_ok=True)
    # flipped views (negative strides), big-endian values and a uint8 mask, all flipped alike
    flipped = volume_metrics(pred[::-1].astype(">f4"), target[::-1], mask[::-1].astype(np.uint8))
    assert flipped == pytest.approx(from_numpy, rel=1e-9, nan_ok=True)


def test_real_ct_matches_scikit_image(real_data):
    """Real chest CT intensities (air, lung, fat, bone) against a smoothed, noisy version of itself."""
    target = read_volume(real_data / "lung1_image.nrrd").array[128:384:2, 128:384:2, :].astype(np.float32)
    rng = np.random.default_rng(3)
    pred = ndimage.uniform_filter(target, 3) + rng.normal(size=target.shape).astype(np.float32) * 25.0
    mask = ndimage.binary_fill_holes(target > -500)
    ours = volume_metrics(pred, target, mask)
    ref = reference_metrics(pred, target, mask)
    assert ours["mae"] == pytest.approx(ref["mae"], abs=1e-3)
    assert ours["psnr"] == pytest.approx(ref["psnr"], abs=1e-3)
    assert ours["ssim"] == pytest.approx(ref["ssim"], abs=1e-4)


def test_voxels_outside_mask_do_not_count(structured_pair):
    pred, target, mask = structured_pair
    before = volume_metrics(pred, target, mask)
    scrambled = pred.copy()
    scrambled[~mask] = np.random.default_rng(1).uniform(-3000, 5000, size=int((~mask).sum()))
    assert volume_metrics(scrambled, target, mask) == pytest.approx(before, rel=1e-12, nan_ok=True)
    inside = pred.copy()
    inside[mask] += 50.0
    changed = volume_metrics(inside, target, mask)
    assert changed["mae"] != pytest.approx(before["mae"], abs=1.0)
    assert changed["psnr"] != pytest.approx(before["psnr"], abs=0.1)


def test_mae_is_not_clipped_but_psnr_is():
    target = np.zeros((9, 9, 9), np.float32)
    target[4, 4, 4] = 3000.0
    pred = target.copy()
    pred[4, 4, 4] = 4000.0  # beyond the PSNR range: clipped back to 3000
    m = volume_metrics(pred, target, np.ones(target.shape, bool))
    assert m["mae"] == pytest.approx(1000.0 / 9**3)
    assert m["psnr"] == math.inf


def test_psnr_uses_the_4024_hu_range():
    target = np.zeros((8, 8, 8), np.float32)
    pred = target.astype(np.float64) + 40.24  # MSE = 40.24^2 -> PSNR = 20 log10(4024 / 40.24) = 40 dB
    assert volume_metrics(pred, target, np.ones(target.shape, bool))["psnr"] == pytest.approx(40.0, abs=1e-9)


def tissue_volume() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A real CT in three blocks along X (air, soft tissue, bone) and a synthetic CT with known
    errors per class: air +10, soft tissue -20, bone +50 HU; class edge values -200 and 250 HU."""
    target = np.empty((12, 10, 8), np.float32)
    target[:4], target[4:8], target[8:] = -900.0, 40.0, 800.0
    target[4, 0, 0], target[5, 0, 0] = -200.0, 250.0  # both edges belong to soft tissue
    pred = target.copy()
    pred[:4] += 10.0
    pred[4:8] -= 20.0
    pred[8:] += 50.0
    return pred, target, np.ones(target.shape, bool)


def test_tissue_split_mae():
    pred, target, mask = tissue_volume()
    m = volume_metrics(pred, target, mask)
    assert m["mae_air"] == pytest.approx(10.0)
    assert m["mae_soft"] == pytest.approx(20.0)
    assert m["mae_bone"] == pytest.approx(50.0)
    assert m["mae"] == pytest.approx((10.0 + 20.0 + 50.0) / 3)
    assert m["bone_dice"] == pytest.approx(1.0)


def test_empty_tissue_class_is_nan():
    pred, target, mask = tissue_volume()
    mask[8:] = False  # no bone inside the mask
    m = volume_metrics(pred, target, mask)
    assert math.isnan(m["mae_bone"]) and math.isnan(m["bone_dice"])
    assert m["mae_air"] == pytest.approx(10.0) and m["mae_soft"] == pytest.approx(20.0)


def test_bone_dice_on_constructed_masks():
    shape = (20, 12, 10)
    target = np.full(shape, 40.0, np.float32)
    pred = target.copy()
    target[2:10] = 700.0  # 8 bone planes in the real CT
    pred[6:16] = 700.0  # 10 in the synthetic CT, 4 shared
    target[18:] = pred[18:] = -900.0
    pred[17] = 900.0  # bone outside the mask: ignored
    mask = np.ones(shape, bool)
    mask[17] = False
    plane = 12 * 10
    expected = 2 * 4 * plane / ((8 + 10) * plane)
    assert volume_metrics(pred, target, mask)["bone_dice"] == pytest.approx(expected)


def test_ssim_map_equals_monai_configured_like_scikit_image(structured_pair):
    """MONAI's compute_ssim_and_cs with a uniform 7^3 window and K2 rescaled for sample covariance
    gives our map (within float32): the equivalence docs/metrics.md states."""
    from monai.metrics.regression import compute_ssim_and_cs

    pred, target, _ = structured_pair
    x = torch.from_numpy(np.clip(target, -1024, 3000) + 1024.0).double()
    y = torch.from_numpy(np.clip(pred, -1024, 3000) + 1024.0).double()
    monai_map, _ = compute_ssim_and_cs(x[None, None], y[None, None], spatial_dims=3, kernel_size=[7, 7, 7],
                                       kernel_sigma=[1.5, 1.5, 1.5], data_range=4024.0, kernel_type="uniform",
                                       k1=0.01, k2=0.03 * math.sqrt(342 / 343))
    ours = ssim_map(x, y)
    assert ours.shape == monai_map.shape[2:] == (30, 24, 18)
    assert torch.allclose(ours, monai_map[0, 0].double(), atol=1e-5)


@pytest.mark.faults
@pytest.mark.parametrize("shapes", [((10, 10, 10), (10, 10, 9), (10, 10, 10)), ((10, 10, 10),) * 2 + ((10, 10, 11),)])
def test_shape_mismatch_is_refused(shapes):
    pred, target, mask = (np.zeros(s, np.float32) for s in shapes)
    with pytest.raises(ValueError, match="share one 3D shape"):
        volume_metrics(pred, target, mask.astype(bool))


@pytest.mark.faults
def test_empty_mask_and_tiny_volume_are_refused():
    with pytest.raises(ValueError, match="no voxels"):
        volume_metrics(np.zeros((8, 8, 8)), np.zeros((8, 8, 8)), np.zeros((8, 8, 8), bool))
    with pytest.raises(ValueError, match="at least 7 voxels"):
        volume_metrics(np.zeros((8, 8, 6)), np.zeros((8, 8, 6)), np.ones((8, 8, 6), bool))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(MedtransError, match="'gpu'"):
        resolve_device("gpu")
    with pytest.raises(MedtransError, match="cuda:99"):
        resolve_device("cuda:99")

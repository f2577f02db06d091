"""Body masks: CT and MR thresholds, holes filled, largest component, real scans."""

from __future__ import annotations

import numpy as np
import pytest

from medtrans.io import Volume, read_volume
from medtrans.phantoms import make_paired_subject
from scipy import ndimage

from medtrans.preprocess.masks import block_mean, body_mask, dice, fill_holes_per_slice, majority_3x3x3


def torso(shape=(60, 50, 40)) -> tuple[np.ndarray, np.ndarray]:
    """(labels, body) of an elliptic torso: 1 soft tissue, 2 lungs, 3 an airway open at the top."""
    i, j, k = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    body = ((i - 30) / 25) ** 2 + ((j - 25) / 18) ** 2 <= 1
    body &= (k >= 4) & (k < 36)
    labels = body.astype(np.uint8)
    lungs = (((np.abs(i - 30) - 10) / 7) ** 2 + ((j - 25) / 10) ** 2 + ((k - 20) / 12) ** 2) <= 1
    labels[lungs & body] = 2
    airway = ((i - 30) ** 2 + (j - 25) ** 2 <= 4) & (k >= 20)
    labels[airway & body] = 3
    return labels, body


def test_ct_mask_fills_lungs_and_open_airway():
    labels, body = torso()
    hu = np.choose(labels, [-1000.0, 40.0, -850.0, -1000.0]).astype(np.float32)
    hu += np.random.default_rng(0).normal(0, 20, hu.shape).astype(np.float32)
    hu[2:6, 2:6, 2:6] = 200.0  # a detached bright object (couch, marker): not the body
    vol = Volume(hu, (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    mask = body_mask(vol, "ct")
    assert mask.dtype == bool and mask.shape == hu.shape
    assert not mask[2:6, 2:6, 2:6].any()
    assert mask[labels == 2].all()  # lungs are holes, filled in 3D
    assert mask[(labels == 3) & (np.arange(40) < 34)].mean() > 0.95  # airway open to the top: filled per slice
    assert dice(mask, body) > 0.98


def test_mr_mask_robust_to_bias_field_and_noise():
    labels, body = torso()
    signal = np.choose(labels, [0.0, 400.0, 60.0, 0.0]) * np.linspace(0.6, 1.3, 60)[:, None, None]
    noisy = np.abs(signal + np.random.default_rng(1).normal(0, 15, signal.shape))
    vol = Volume(noisy.astype(np.float32), (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    assert dice(body_mask(vol, "mr"), body) > 0.97


def test_blank_scan_gives_empty_mask():
    vol = Volume(np.full((8, 8, 8), -1000.0, np.float32), (1, 1, 1), (0, 0, 0), np.eye(3))
    assert not body_mask(vol, "ct").any()
    with pytest.raises(ValueError, match="modality"):
        body_mask(vol, "pet")


def test_fill_per_slice_only_within_slices():
    ring = np.zeros((7, 7, 3), bool)
    ring[1:6, 1:6, 1] = True
    ring[2:5, 2:5, 1] = False
    filled = fill_holes_per_slice(ring, axis=2)
    assert filled[2:5, 2:5, 1].all() and not filled[:, :, 0].any() and not filled[:, :, 2].any()


def test_phantom_masks_agree_after_truth_alignment():
    mr, ct, truth = make_paired_subject(3, "tiny")
    mr_mask, ct_mask = body_mask(mr, "mr"), body_mask(ct, "ct")
    # The MR head mask, carried onto the CT grid through the true transform, matches the CT's.
    world = ct.index_to_world(np.argwhere(np.ones(ct.shape, bool)))
    matrix = np.asarray(truth["fixed_to_moving"])
    ijk = np.round(mr.world_to_index(world @ matrix[:3, :3].T + matrix[:3, 3])).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(mr.shape)), axis=1)
    carried = np.zeros(ct.size if hasattr(ct, "size") else int(np.prod(ct.shape)), bool)
    carried[inside] = mr_mask[tuple(ijk[inside].T)]
    assert dice(carried.reshape(ct.shape), ct_mask) > 0.9


def test_real_ct_mask(real_data):
    ct = read_volume(real_data / "lung1_image.nrrd")
    mask = body_mask(ct, "ct")
    # The chest fills 35-70 % of the field of view; lungs (< -500 HU) lie inside the mask.
    assert 0.35 < mask.mean() < 0.7
    lung = (ct.array < -500) & mask
    assert lung.sum() > 0.15 * mask.sum()
    assert not mask[:, :5, :].any() or mask[:, :5, :].mean() < 0.05  # the air above the chest stays out


def test_real_mr_mask(real_data):
    mr = read_volume(real_data / "brain1_image.nrrd")
    mask = body_mask(mr, "mr")
    assert 0.4 < mask.mean() < 0.8
    centre = tuple(n // 2 for n in mr.shape)
    assert mask[centre]
    assert not mask[0, 0, :].any() and not mask[-1, -1, :].any()


def test_majority_is_the_median_of_a_binary_image():
    mask = np.random.default_rng(2).random((17, 12, 9)) < 0.45
    median = ndimage.median_filter(mask.astype(np.uint8), size=3, mode="nearest") > 0
    np.testing.assert_array_equal(majority_3x3x3(mask), median)


def test_block_mean_with_edge_padding():
    array = np.arange(5 * 4 * 3, dtype=np.float32).reshape(5, 4, 3)
    means = block_mean(array, (2, 2, 1))
    padded = np.concatenate([array, array[-1:]], axis=0)  # 5 -> 6 along x, repeating the last plane
    np.testing.assert_allclose(means, padded.reshape(3, 2, 2, 2, 3).mean(axis=(1, 3)))


def test_fine_scan_keeps_a_fine_edge():
    """At 0.5 mm the shape work runs on 2 mm blocks, yet the mask follows the body voxel by voxel."""
    shape = (96, 90, 80)
    i, j, k = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    body = ((i - 47.3) / 38) ** 2 + ((j - 44.6) / 31) ** 2 + ((k - 40.2) / 29) ** 2 <= 1
    hu = np.where(body, 40.0, -1000.0).astype(np.float32)
    mask = body_mask(Volume(hu, (0.5, 0.5, 0.5), (0, 0, 0), np.eye(3)), "ct")
    assert np.count_nonzero(mask != body) == 0

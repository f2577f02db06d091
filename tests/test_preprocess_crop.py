"""Crop to the body box with a margin, pad to a multiple, and undo it exactly."""

from __future__ import annotations

import numpy as np

from medtrans.io import Volume
from medtrans.preprocess.crop import CropBox, apply_crop, crop_box, uncrop


def test_box_holds_body_and_margin_and_is_a_multiple():
    mask = np.zeros((100, 90, 40), bool)
    mask[30:61, 20:75, 5:30] = True
    box = crop_box(mask, (1.0, 2.0, 2.5), margin_mm=8.0, pad_multiple=16)
    assert all(size % 16 == 0 for size in box.size)
    start, stop = np.array(box.start), np.array(box.start) + np.array(box.size)
    margin = np.array([8, 4, 4])  # 8 mm in voxels, rounded up
    assert np.all(start <= np.array([30, 20, 5]) - np.minimum(margin, [30, 20, 5]))
    assert np.all(stop >= np.minimum(np.array([61, 75, 30]) + margin, mask.shape))
    assert np.all(np.array(box.size) - (np.minimum(np.array([61, 75, 30]) + margin, mask.shape)
                                        - np.maximum(np.array([30, 20, 5]) - margin, 0)) < 16)


def test_crop_and_uncrop_round_trip_with_geometry(oblique_volume):
    vol = oblique_volume
    mask = np.zeros(vol.shape, bool)
    mask[2:5, 3:6, 1:4] = True
    box = crop_box(mask, vol.spacing_mm, margin_mm=1.0, pad_multiple=8)
    cropped = apply_crop(vol, box, fill=-5.0)
    assert cropped.shape == box.size
    # Every voxel keeps its world position: cropped voxel v is source voxel v + start.
    v = np.array([3, 4, 2])
    source = v + np.array(box.start)
    assert np.allclose(cropped.index_to_world(v), vol.index_to_world(source))
    assert cropped.array[tuple(v)] == vol.array[tuple(source)]
    assert (cropped.array == -5.0).sum() == np.prod(box.size) - np.prod(
        [min(s + n, m) - max(s, 0) for s, n, m in zip(box.start, box.size, vol.shape)])
    restored = uncrop(cropped, box, fill=0.0)
    assert restored.same_grid(vol)
    source_slices, _ = box.overlap()
    assert np.array_equal(restored.array[source_slices], vol.array[source_slices])


def test_empty_mask_keeps_everything_and_box_round_trips_as_data():
    mask = np.zeros((20, 17, 9), bool)
    box = crop_box(mask, (1, 1, 1), margin_mm=5.0, pad_multiple=16)
    assert box.size == (32, 32, 16)
    assert CropBox.from_dict(box.to_dict()) == box
    vol = Volume(np.arange(20 * 17 * 9, dtype=np.float32).reshape(20, 17, 9), (1, 1, 1), (0, 0, 0), np.eye(3))
    assert np.array_equal(uncrop(apply_crop(vol, box, -1.0), box, -1.0).array, vol.array)

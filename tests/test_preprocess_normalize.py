"""Intensity normalization to [-1, 1] and its exact inverse."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from medtrans.config import PreprocessConfig
from medtrans.errors import MedtransError
from medtrans.io import read_volume
from medtrans.preprocess.masks import body_mask
from medtrans.preprocess.normalize import denormalize, normalize

CFG = PreprocessConfig()


def test_ct_window_maps_to_unit_range_and_inverts():
    hu = np.random.default_rng(0).uniform(-1500, 3500, (20, 10, 5)).astype(np.float32)
    x, params = normalize(hu, None, "ct", CFG)
    assert params == {"kind": "window", "low": -1024.0, "high": 3000.0}
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    assert np.allclose(denormalize(x, params), np.clip(hu, -1024, 3000), atol=1e-3)
    assert normalize(np.array([[[988.0]]]), None, "ct", CFG)[0].item() == pytest.approx(0.0)


def test_mr_percentiles_inside_mask():
    rng = np.random.default_rng(1)
    mr = np.zeros((30, 30, 30), np.float32)
    mask = np.zeros(mr.shape, bool)
    mask[5:25, 5:25, 5:25] = True
    mr[mask] = rng.normal(500, 80, mask.sum())
    x, params = normalize(mr, mask, "mr", CFG)
    low, high = np.percentile(mr[mask], (0.5, 99.5))
    assert params["kind"] == "percentile"
    assert params["low"] == pytest.approx(low) and params["high"] == pytest.approx(high)
    assert x[~mask].max() == -1.0  # background is below the 0.5th percentile of the body
    assert np.mean(x[mask] == 1.0) == pytest.approx(0.005, abs=0.002)
    inside = (mr >= low) & (mr <= high)
    assert np.allclose(denormalize(x, params)[inside], mr[inside], rtol=1e-5, atol=1e-3)


def test_mr_zscore_inverts_within_three_sd():
    cfg = dataclasses.replace(CFG, mr_norm="zscore")
    rng = np.random.default_rng(2)
    mr = rng.normal(300, 40, (20, 20, 20)).astype(np.float32)
    mask = np.ones(mr.shape, bool)
    x, params = normalize(mr, mask, "mr", cfg)
    assert params["kind"] == "zscore" and params["mean"] == pytest.approx(mr.mean(), rel=1e-5)
    assert -1.0 <= x.min() and x.max() <= 1.0
    inside = np.abs(mr - params["mean"]) < 3 * params["std"]
    assert np.allclose(denormalize(x, params)[inside], mr[inside], atol=1e-3)


def test_params_are_plain_json():
    mr = np.arange(1000, dtype=np.float32).reshape(10, 10, 10)
    _, params = normalize(mr, mr > 100, "mr", CFG)
    assert json.loads(json.dumps(params)) == params


def test_constant_mr_is_refused():
    with pytest.raises(MedtransError, match="constant"):
        normalize(np.ones((4, 4, 4), np.float32), None, "mr", CFG)


def test_real_mr_percentiles(real_data):
    mr = read_volume(real_data / "brain1_image.nrrd")
    mask = body_mask(mr, "mr")
    x, params = normalize(mr.array, mask, "mr", CFG)
    assert 0 < params["low"] < params["high"] < mr.array.max()
    assert np.median(x[mask]) > -0.8  # tissue spreads over the range, not squeezed at one end
    restored = denormalize(x, params)
    inside = (mr.array >= params["low"]) & (mr.array <= params["high"])
    assert np.allclose(restored[inside], mr.array[inside], atol=1e-2)

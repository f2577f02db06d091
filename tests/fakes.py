"""Tiny stand-ins for stage outputs, written to a temp folder (preprocessed cohorts per docs/design.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from medtrans.io import Volume, write_volume

CT_WINDOW = {"kind": "window", "low": -1024.0, "high": 3000.0}


def ellipsoid(shape: tuple[int, int, int], radius: float = 0.8) -> np.ndarray:
    """A centred ellipsoid 'body', absent from the first and last 3 slices along Z."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    mask = (grid**2).sum(0) < radius
    mask[:, :, :3] = mask[:, :, -3:] = False
    return mask


def structured_pair(shape: tuple[int, int, int], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mr, ct, mask) in [-1, 1]: smooth random MR in the body; CT a fixed non-linear map of the MR."""
    rng = np.random.default_rng(seed)
    mask = ellipsoid(shape)
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    texture = texture / (np.abs(texture).max() + 1e-6)
    mr = np.where(mask, 0.3 + 0.6 * texture, -1.0).astype(np.float32)
    ct = np.where(mask, np.tanh(3 * texture) * 0.5 - 0.4, -1.0).astype(np.float32)
    return mr, ct, mask


def write_preprocessed(root: Path, subjects: dict[str, str], mode: str,
                       shape: tuple[int, int, int] = (20, 18, 16)) -> Path:
    """A preprocessed folder (manifest.json + volumes); ``subjects`` maps subject ID -> domain."""
    records = []
    for index, (sid, domain) in enumerate(subjects.items()):
        mr, ct, mask = structured_pair(shape, index)
        arrays = {"mr": mr, "ct": ct} if mode == "paired" else {"image": mr if domain == "a" else ct}
        images = {}
        for key, array in arrays.items():
            write_volume(Volume(array, (2, 2, 2), (0, 0, 0), np.eye(3)), root / sid / f"{key}.nii.gz")
            images[key] = f"{sid}/{key}.nii.gz"
        write_volume(Volume(mask.astype(np.uint8), (2, 2, 2), (0, 0, 0), np.eye(3)), root / sid / "body_mask.nii.gz")
        records.append({"subject": sid, "domain": domain, "status": "ok", "reason": None, "images": images,
                        "mask": f"{sid}/body_mask.nii.gz", "shape": list(shape), "spacing_mm": [2.0, 2.0, 2.0],
                        "normalization": {"ct": CT_WINDOW, "mr": {"kind": "percentile", "low": 0.0, "high": 1.0}}})
    records.append({"subject": "bad", "domain": "paired", "status": "flagged", "reason": "registration failed",
                    "images": {}, "mask": ""})
    (root / "manifest.json").write_text(json.dumps({"version": 1, "mode": mode, "subjects": records}))
    return root


def head_like(shape: tuple[int, int, int], modality: str, seed: int = 0) -> np.ndarray:
    """A smooth ellipsoid 'head' in air: CT in HU (soft tissue, a bright shell), or MR in arbitrary units."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(0))
    texture = ndimage.gaussian_filter(rng.normal(size=shape), 1.5)
    if modality == "ct":
        values = np.where(radius < 0.7, 40 + 200 * texture, -1000.0)
        values = np.where((radius > 0.6) & (radius < 0.7), 900.0, values)
        return values.astype(np.float32)
    values = np.where(radius < 0.7, 400 + 300 * texture, 5 * np.abs(rng.normal(size=shape)))
    return np.where((radius > 0.6) & (radius < 0.7), 20.0, values).astype(np.float32)


def write_checkpoint(path: Path, config_values: dict, network_args: dict, translator: str = "G") -> Path:
    """A checkpoint as `medtrans train` writes it, with freshly initialised networks."""
    from medtrans.config import config_from_dict, config_to_dict
    from medtrans.models import build_network
    from medtrans.train.checkpoint import save_checkpoint

    cfg = config_from_dict(config_values)
    networks = {name: build_network(args).state_dict() for name, args in network_args.items()}
    return save_checkpoint({"step": 1, "config": config_to_dict(cfg), "networks": networks,
                            "network_args": network_args, "translator": translator}, path)

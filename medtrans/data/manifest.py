"""Read the preprocessed manifest and map its volumes into memory once.

Volumes are decoded from .nii.gz a single time into ``.npy`` files beside them and then
memory-mapped, so every DataLoader worker shares the page cache instead of re-decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medtrans.errors import MedtransError
from medtrans.io import atomic_path, read_volume


@dataclass(frozen=True)
class SubjectArrays:
    """One preprocessed subject: named images (X, Y, Z) in [-1, 1] and its body mask (bool)."""

    subject: str
    domain: str
    images: dict[str, np.ndarray]
    mask: np.ndarray


def load_manifest(preprocessed_dir: str | Path) -> dict:
    """The manifest.json of a preprocessed folder (see docs/design.md)."""
    path = Path(preprocessed_dir) / "manifest.json"
    if not path.is_file():
        raise MedtransError(f"{path}: no preprocessing manifest; run `medtrans preprocess` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MedtransError(f"{path}: manifest is not valid JSON ({err})") from None


def usable_records(manifest: dict) -> list[dict]:
    """Subject records whose preprocessing succeeded and passed quality checks."""
    return [r for r in manifest["subjects"] if r["status"] == "ok"]


def cached_array(volume_path: Path) -> np.ndarray:
    """Memory-mapped float32/uint8 array of a preprocessed volume, decoded once to a .npy beside it."""
    npy = volume_path.with_name(volume_path.name.split(".")[0] + ".npy")
    if not npy.is_file() or npy.stat().st_mtime < volume_path.stat().st_mtime:
        array = read_volume(volume_path).array
        with atomic_path(npy) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
    return np.load(npy, mmap_mode="r")


def record_path(root: Path, relative: str, record: dict) -> Path:
    """``relative`` resolved inside the preprocessed folder; refuses paths that leave it.

    The manifest is a file a user may have edited or received: a path outside the folder
    would make training read, and write a cache beside, files it was never meant to touch.
    """
    folder = root.resolve()
    path = (folder / relative).resolve()
    if Path(relative).is_absolute() or folder not in path.parents:
        raise MedtransError(f"{root / 'manifest.json'}: subject {record.get('subject')!r} names {relative!r}, "
                            f"outside the preprocessed folder; refusing to read it")
    return path


def load_subject(preprocessed_dir: str | Path, record: dict) -> SubjectArrays:
    """Map one subject's images and mask (paths in ``record`` are relative to the folder)."""
    root = Path(preprocessed_dir)
    images = {key: cached_array(record_path(root, rel, record)) for key, rel in record["images"].items()}
    mask = cached_array(record_path(root, record["mask"], record)).astype(bool)
    return SubjectArrays(record["subject"], record.get("domain", "paired"), images, mask)

"""Train / validation / test split by subject (never by slice), seeded and saved with the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medtrans.config import SplitConfig
from medtrans.errors import MedtransError
from medtrans.io import write_text_atomic

SETS = ("train", "val", "test")


def set_sizes(n_subjects: int, split: SplitConfig) -> dict[str, int]:
    """Subjects per set: rounded fractions, with at least one in each set given a non-zero fraction."""
    fractions = {"train": split.train, "val": split.val, "test": split.test}
    sizes = {name: (max(1, round(f * n_subjects)) if f > 0 else 0) for name, f in fractions.items()}
    while sum(sizes.values()) > n_subjects:
        largest = max(sizes, key=sizes.get)
        sizes[largest] -= 1
    sizes["train"] += n_subjects - sum(sizes.values())
    return sizes


def make_split(subjects_by_group: dict[str, list[str]], split: SplitConfig, seed: int) -> dict[str, list[str]]:
    """Split each group (a domain, or all paired subjects) by the same fractions; union the sets.

    Example:
        >>> s = make_split({"paired": [f"p{i}" for i in range(10)]}, SplitConfig(0.8, 0.1, 0.1), 0)
        >>> [len(s[k]) for k in ("train", "val", "test")]
        [8, 1, 1]
    """
    result: dict[str, list[str]] = {name: [] for name in SETS}
    for group, subjects in sorted(subjects_by_group.items()):
        ordered = sorted(subjects)
        if len(ordered) < 2:
            raise MedtransError(f"{group}: need at least 2 usable subjects to split, found {len(ordered)}")
        rng = np.random.default_rng([seed, len(ordered)])
        shuffled = [ordered[i] for i in rng.permutation(len(ordered))]
        sizes = set_sizes(len(ordered), split)
        start = 0
        for name in SETS:
            result[name] += sorted(shuffled[start:start + sizes[name]])
            start += sizes[name]
    return result


def save_split(split_sets: dict[str, list[str]], path: str | Path) -> None:
    """Write split.json atomically."""
    write_text_atomic(path, json.dumps(split_sets, indent=2) + "\n")


def load_split(path: str | Path) -> dict[str, list[str]]:
    """Read split.json; checks no subject is in two sets."""
    path = Path(path)
    if not path.is_file():
        raise MedtransError(f"{path}: no subject split found; it is written by `medtrans train`")
    sets = json.loads(path.read_text())
    seen: dict[str, str] = {}
    for name in SETS:
        for subject in sets.get(name, []):
            if subject in seen:
                raise MedtransError(f"{path}: subject {subject} is in both {seen[subject]} and {name}")
            seen[subject] = name
    return sets

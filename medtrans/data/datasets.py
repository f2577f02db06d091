"""Paired (pix2pix) and unpaired (CycleGAN) datasets over memory-mapped preprocessed volumes.

Items are indexed by `SampleKey` = (index, sample_seed) from `SeededBatchSampler`; every random
choice inside an item (patch position, the B image of an unpaired sample, augmentation) is drawn
from ``sample_seed``, so a batch is a pure function of the run seed and step.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from medtrans.data.augment import Augment
from medtrans.data.manifest import SubjectArrays
from medtrans.data.sampling import SampleKey
from medtrans.data.views import PatchView, SliceView, pad_to_patch

PATCHES_PER_SUBJECT = 16
"""Epoch length of patch datasets without samples_per_epoch: patches drawn per subject."""


@dataclass(frozen=True)
class SampleSource:
    """Samples of named images from a list of subjects, seen through one view."""

    subjects: list[SubjectArrays]
    view: SliceView | PatchView
    samples_per_epoch: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.view, PatchView):
            padded = [
                SubjectArrays(s.subject, s.domain,
                              {k: pad_to_patch(a, self.view.patch_size, -1.0) for k, a in s.images.items()},
                              pad_to_patch(s.mask, self.view.patch_size, False))
                for s in self.subjects
            ]
            object.__setattr__(self, "subjects", padded)
        if isinstance(self.view, SliceView):
            planes = [self.view.plane_of(s.mask.shape) for s in self.subjects]
            plane_shape = tuple(int(max(p[i] for p in planes)) for i in range(2))
            object.__setattr__(self, "view", dataclasses.replace(self.view, plane_shape=plane_shape))
        candidates = [self.view.locations(s.mask) for s in self.subjects]
        object.__setattr__(self, "candidates", candidates)
        if isinstance(self.view, SliceView):
            items = [(i, int(loc)) for i, locs in enumerate(candidates) for loc in locs]
        else:
            count = self.samples_per_epoch or PATCHES_PER_SUBJECT * len(self.subjects)
            items = [(i % len(self.subjects), -1) for i in range(count)]
        object.__setattr__(self, "items", items)

    def __len__(self) -> int:
        return len(self.items)

    def draw(self, index: int, rng: np.random.Generator, keys: list[str], context_keys: list[str]) -> dict[str, torch.Tensor]:
        """Item ``index`` (a patch position is drawn from ``rng``); context only for ``context_keys``."""
        subject_index, location = self.items[index]
        subject = self.subjects[subject_index]
        if isinstance(self.view, PatchView):
            location = self.view.random_location(self.candidates[subject_index], rng, subject.mask.shape)
        return {key: torch.from_numpy(self.view.extract(subject.images[key], location, key in context_keys))
                for key in keys}

    def describe(self, index: int) -> tuple[str, int]:
        """(subject, slice index or -1) of item ``index``."""
        subject_index, location = self.items[index]
        return self.subjects[subject_index].subject, location


class PairedDataset(Dataset):
    """(source, target) pairs from the same subject and location: source has 2*context+1 channels in 2.5D.

    Returns dicts ``{"source": (C, *S), "target": (1, *S), "subject": str, "location": int}``.
    """

    def __init__(self, source: SampleSource, source_key: str = "mr", target_key: str = "ct",
                 augment: Augment | None = None) -> None:
        self.source = source
        self.keys = (source_key, target_key)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: SampleKey) -> dict:
        index, sample_seed = key
        rng = np.random.default_rng(sample_seed)
        source_key, target_key = self.keys
        arrays = self.source.draw(index, rng, [source_key, target_key], [source_key])
        sample = {"source": arrays[source_key], "target": arrays[target_key]}
        if self.augment is not None:
            sample = self.augment(sample, sample_seed)
        subject, location = self.source.describe(index)
        return {**sample, "subject": subject, "location": location}


class UnpairedDataset(Dataset):
    """Independent draws from domain A (by index) and domain B (random, from the sample seed).

    The epoch is domain A's item list; returns ``{"a": (C, *S), "b": (C, *S)}``.
    """

    def __init__(self, source_a: SampleSource, source_b: SampleSource, key_a: str, key_b: str,
                 augment_a: Augment | None = None, augment_b: Augment | None = None) -> None:
        self.sources = (source_a, source_b)
        self.keys = (key_a, key_b)
        self.augments = (augment_a, augment_b)

    def __len__(self) -> int:
        return len(self.sources[0])

    def __getitem__(self, key: SampleKey) -> dict:
        index, sample_seed = key
        rng = np.random.default_rng(sample_seed)
        index_b = int(rng.integers(len(self.sources[1])))
        out = {}
        for name, source, image_key, item, augment, seed in zip(
            ("a", "b"), self.sources, self.keys, (index, index_b), self.augments, (sample_seed, sample_seed + 1)
        ):
            image = source.draw(item, rng, [image_key], [image_key])[image_key]
            if augment is not None:
                image = augment({"image": image}, seed)["image"]
            out[name] = image
            out[f"subject_{name}"] = source.describe(item)[0]
        return out

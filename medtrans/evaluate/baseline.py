"""The lookup baseline for MRI -> CT: one HU value per MR intensity, fitted on the training pairs.

It answers "how much does a network add over a per-intensity mapping?". Because T1 MR shows bone
and air equally dark, a lookup cannot tell them apart; a model that learned context must beat it.
The baseline is applied through the same inference and evaluation code as the networks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from medtrans.data.manifest import SubjectArrays

LOOKUP_BINS = 256


class LookupGenerator(nn.Module):
    """Maps normalized MR values in [-1, 1] to normalized CT values through a fitted table (any shape)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table.float())

    def forward(self, mr: torch.Tensor) -> torch.Tensor:
        bins = len(self.table)
        index = ((mr.float() + 1.0) / 2.0 * bins).long().clamp(0, bins - 1)
        centre = index[:, index.shape[1] // 2:index.shape[1] // 2 + 1]
        return self.table[centre]


def fit_lookup(subjects: list[SubjectArrays], bins: int = LOOKUP_BINS) -> LookupGenerator:
    """Mean normalized CT per MR intensity bin over the training subjects' body voxels.

    Empty bins take the value of the nearest filled bin.
    """
    sums = np.zeros(bins)
    counts = np.zeros(bins)
    for subject in subjects:
        mr = np.asarray(subject.images["mr"])[subject.mask]
        ct = np.asarray(subject.images["ct"])[subject.mask]
        index = np.clip(((mr + 1.0) / 2.0 * bins).astype(int), 0, bins - 1)
        sums += np.bincount(index, weights=ct, minlength=bins)
        counts += np.bincount(index, minlength=bins)
    filled = np.flatnonzero(counts)
    if not len(filled):
        raise ValueError("no body voxels in the training subjects: cannot fit the lookup baseline")
    means = sums[filled] / counts[filled]
    nearest = filled[np.abs(np.arange(bins)[:, None] - filled[None, :]).argmin(axis=1)]
    table = np.interp(np.arange(bins), filled, means)
    table[counts == 0] = means[np.searchsorted(filled, nearest[counts == 0])]
    return LookupGenerator(torch.from_numpy(table))

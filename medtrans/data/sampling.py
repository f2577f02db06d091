"""Batches drawn as a pure function of (seed, step): resuming at step N needs no sampler state."""

from __future__ import annotations

import functools
from typing import Iterator

import numpy as np
from torch.utils.data import Sampler

SampleKey = tuple[int, int]
"""(item index, per-sample random seed): what the datasets' ``__getitem__`` receives."""


@functools.lru_cache(maxsize=4)
def epoch_order(seed: int, epoch: int, num_items: int) -> np.ndarray:
    """The seeded permutation of item indices for one epoch."""
    return np.random.default_rng([seed, epoch]).permutation(num_items)


class SeededBatchSampler(Sampler[list[SampleKey]]):
    """Yields ``num_steps`` batches starting at ``start_step``; epochs are seeded permutations.

    Each batch is a list of ``(index, sample_seed)`` keys. Batch ``s`` depends only on ``seed`` and
    ``s``, so a resumed run sees exactly the batches an uninterrupted run would. Under DDP each
    rank takes its own ``batch_size`` keys from a global batch of ``batch_size * world_size``.

    Example:
        >>> batches = list(SeededBatchSampler(10, 4, seed=0, start_step=0, num_steps=3))
        >>> [len(b) for b in batches]
        [4, 4, 4]
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start_step: int, num_steps: int,
                 rank: int = 0, world_size: int = 1) -> None:
        if num_items < 1:
            raise ValueError("no training samples: every subject was filtered out")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.num_steps = num_steps
        self.rank = rank
        self.world_size = world_size

    def __len__(self) -> int:
        return self.num_steps

    def batch_keys(self, step: int) -> list[SampleKey]:
        """This rank's keys for global step ``step``."""
        global_batch = self.batch_size * self.world_size
        first = step * global_batch + self.rank * self.batch_size
        positions = range(first, first + self.batch_size)
        keys = []
        for position in positions:
            epoch, offset = divmod(position, self.num_items)
            order = epoch_order(self.seed, epoch, self.num_items)
            sample_seed = int(np.random.default_rng([self.seed, position, 1]).integers(2**31))
            keys.append((int(order[offset]), sample_seed))
        return keys

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for step in range(self.start_step, self.start_step + self.num_steps):
            yield self.batch_keys(step)

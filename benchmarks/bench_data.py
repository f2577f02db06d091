"""Data loading speed on the preprocessed sample cohort: 2D slices/s, 3D patches/s, and the fraction
of a training step spent waiting for data.

Preprocesses the shipped paired cohort into a temporary run folder first when --preprocessed is
not given (that part is not timed). The step fraction is measured with the demo config
(pipelines/demo.yaml: 2D pix2pix, batch 8) by timing the DataLoader and the training step
separately over the same batches, with the config's `dataset.num_workers` loader processes
(0 = loading in the main process, the worst case).
Last line: {"bench": "data", "slices_per_s": A, "patches_per_s": B, "data_fraction_of_step": F}

Usage: python benchmarks/bench_data.py [--preprocessed RUN/preprocessed] [--config pipelines/demo.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from medtrans.config import load_config, resolve_paths
from medtrans.data import SeededBatchSampler, build_training_dataset, load_manifest, make_split
from medtrans.data.builder import channels, subjects_by_group
from medtrans.data.views import view_from_config
from medtrans.device import resolve_device
from medtrans.precision import autocast_dtype
from medtrans.preprocess import run_preprocess
from medtrans.train.engine import recipe_class
from medtrans.train.step import StepContext


def samples_per_second(dataset, batch_size: int, steps: int) -> float:
    """Samples per second through a main-process DataLoader (decode once, then memory-mapped)."""
    loader = DataLoader(dataset, batch_sampler=SeededBatchSampler(len(dataset), batch_size, 0, 0, steps))
    started = time.perf_counter()
    for _ in loader:
        pass
    return steps * batch_size / (time.perf_counter() - started)


def data_fraction(cfg, dataset, steps: int, workers: int) -> tuple[float, float]:
    """(share of data wait + step time spent waiting for batches, seconds per step) for the config's model."""
    device = resolve_device(cfg.train.device)
    in_channels, out_channels = channels(cfg)
    image_size = tuple(dataset[(0, 0)]["source"].shape[1:])
    ctx = StepContext(device, autocast_dtype(device, cfg.train.amp), cfg.train.channels_last)
    recipe = recipe_class(cfg.train.recipe)(cfg, ctx, view_from_config(cfg.dataset).spatial_dims,
                                            in_channels, out_channels, image_size)
    recipe.train()
    sampler = SeededBatchSampler(len(dataset), cfg.train.batch_size, 0, 0, steps + 2)
    loader = iter(DataLoader(dataset, batch_sampler=sampler, num_workers=workers))
    recipe.train_step(next(loader))
    recipe.train_step(next(loader))
    data_s = step_s = 0.0
    for _ in range(steps):
        started = time.perf_counter()
        batch = next(loader)
        data_s += time.perf_counter() - started
        started = time.perf_counter()
        recipe.train_step(batch)
        step_s += time.perf_counter() - started
    return data_s / (data_s + step_s), step_s / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="pipelines/demo.yaml")
    parser.add_argument("--preprocessed", type=Path)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    cfg = resolve_paths(load_config(args.config))
    preprocessed = args.preprocessed
    if preprocessed is None:
        preprocessed = Path(tempfile.mkdtemp(prefix="bench_data_")) / "preprocessed"
        print(f"preprocessing the sample cohort into {preprocessed} ...", flush=True)
        run_preprocess(cfg, preprocessed, workers=2)
    train_ids = make_split(subjects_by_group(load_manifest(preprocessed)), cfg.dataset.split, cfg.seed)["train"]
    slices = build_training_dataset(cfg, preprocessed, train_ids)
    slices_per_s = samples_per_second(slices, cfg.train.batch_size, args.steps)
    cfg3d = dataclasses.replace(cfg, dataset=dataclasses.replace(cfg.dataset, kind="3d", patch_size=(64, 64, 64)))
    patches = build_training_dataset(cfg3d, preprocessed, train_ids)
    patches_per_s = samples_per_second(patches, 2, args.steps)
    fraction, step_s = data_fraction(cfg, slices, args.steps, cfg.dataset.num_workers)
    print(f"2D slices: {slices_per_s:.0f}/s (augmented), 3D 64^3 patches: {patches_per_s:.1f}/s, "
          f"data share of a {cfg.train.recipe} step: {100 * fraction:.1f} % with {cfg.dataset.num_workers} "
          f"loader worker(s), {step_s:.3f} s per step (threads {torch.get_num_threads()})")
    print(json.dumps({"bench": "data", "slices_per_s": round(slices_per_s, 1), "patches_per_s": round(patches_per_s, 2),
                      "data_fraction_of_step": round(fraction, 4)}))


if __name__ == "__main__":
    main()

"""Seconds per training iteration: 2D pix2pix (U-Net 256, batch 1, 256x256, 1 channel), 3D pix2pix
(64^3 patches) and 2D CycleGAN (ResNet-9, batch 1, 256x256), on whatever device is present.

Each setting is timed in plain float32 and with the engine's defaults (channels_last, and bf16
autocast where the CPU or GPU supports it); the engine-default figure is the one reported, the
float32 one is printed beside it. Last line: {"bench": "train", "device": ..., "pix2pix_2d_s_per_iter": A,
"pix2pix_3d_s_per_iter": B, "cyclegan_2d_s_per_iter": C, ...}.

Usage: python benchmarks/bench_train.py [--iters N] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from medtrans.config import config_from_dict
from medtrans.device import resolve_device
from medtrans.precision import autocast_dtype
from medtrans.train.cyclegan import CycleGANRecipe
from medtrans.train.pix2pix import Pix2PixRecipe
from medtrans.train.step import StepContext


def seconds_per_step(recipe, batch: dict, iters: int, device: torch.device) -> float:
    """Median-free mean over ``iters`` steps after two warm-up steps."""
    for _ in range(2):
        recipe.train_step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        recipe.train_step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters


def time_setting(kind: str, spatial_dims: int, size: int, device: torch.device, iters: int,
                 amp_dtype: torch.dtype | None, channels_last: bool) -> float:
    """Seconds per step of one recipe at one precision setting."""
    torch.manual_seed(0)
    if kind == "pix2pix":
        cfg = config_from_dict({"name": "bench", "data": {"paired": "x"}, "train": {"steps": 1000}})
        recipe = Pix2PixRecipe(cfg, StepContext(device, amp_dtype, channels_last), spatial_dims, 1, 1, (size,) * spatial_dims)
        batch = {"source": torch.rand(1, 1, *(size,) * spatial_dims) * 2 - 1,
                 "target": torch.rand(1, 1, *(size,) * spatial_dims) * 2 - 1}
    else:
        cfg = config_from_dict({"name": "bench", "data": {"domain_a": "a", "domain_b": "b"},
                                "train": {"recipe": "cyclegan", "steps": 1000}})
        recipe = CycleGANRecipe(cfg, StepContext(device, amp_dtype, channels_last), spatial_dims, 1, 1, (size,) * spatial_dims)
        batch = {"a": torch.rand(1, 1, size, size) * 2 - 1, "b": torch.rand(1, 1, size, size) * 2 - 1}
    recipe.train()
    return seconds_per_step(recipe, batch, iters, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    fast_dtype = autocast_dtype(device, "auto")
    channels_last = True
    results: dict[str, object] = {"bench": "train", "device": str(device),
                                  "threads": torch.get_num_threads(),
                                  "amp": str(fast_dtype).replace("torch.", "") if fast_dtype else "none"}
    settings = [("pix2pix_2d", "pix2pix", 2, 256), ("pix2pix_3d", "pix2pix", 3, 64), ("cyclegan_2d", "cyclegan", 2, 256)]
    for name, kind, dims, size in settings:
        fp32 = time_setting(kind, dims, size, device, args.iters, None, False)
        fast = time_setting(kind, dims, size, device, args.iters, fast_dtype, channels_last)
        print(f"{name}: float32 {fp32:.3f} s/iter, engine default ({results['amp']}) {fast:.3f} s/iter", flush=True)
        results[f"{name}_fp32_s_per_iter"] = round(fp32, 4)
        results[f"{name}_s_per_iter"] = round(fast, 4)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

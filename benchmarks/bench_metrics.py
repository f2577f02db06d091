"""Seconds for the evaluation metrics (MAE, PSNR, SSIM, tissue MAE, bone Dice) of one 256 x 256 x 180
synthetic / real CT pair inside a body mask: medtrans on the CPU (target: under 2 s), scikit-image's
MAE + PSNR + SSIM with the same SynthRAD2023 recipe on the same arrays, and medtrans on the GPU when
there is one. Each figure is the best of --repeats wall-clock runs. Also prints how far medtrans'
numbers are from scikit-image's.

Also timed with the mask set to the whole volume (no air to skip: medtrans' worst case).
Last line: {"bench": "metrics", "cpu_s": C, "gpu_s": G or null, "skimage_s": S, "cpu_whole_volume_s": ...,
"skimage_whole_volume_s": ..., "threads": T}.

Usage: python benchmarks/bench_metrics.py [--repeats N] [--threads N]
(--threads sets torch's CPU threads; on a shared machine one thread avoids waiting on busy cores.)
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Callable

import numpy as np
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.util import crop

from medtrans.evaluate.metrics import volume_metrics

SHAPE = (256, 256, 180)


def phantom_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(synthetic CT, real CT, body mask): a body ellipsoid with lung, a bone rod and textured tissue."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in SHAPE], indexing="ij", sparse=True)
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 + (z / 0.95) ** 2 < 1
    ct = np.where(body, 40.0, -1000.0).astype(np.float32)
    ct[((x - 0.35) / 0.25) ** 2 + (y / 0.3) ** 2 + (z / 0.6) ** 2 < 1] = -800.0
    ct[np.broadcast_to(((x / 0.1) ** 2 + ((y + 0.4) / 0.1) ** 2 < 1), SHAPE) & body] = 900.0
    ct += ndimage.gaussian_filter(rng.standard_normal(SHAPE, dtype=np.float32), 2) * 200
    synthetic = ct + ndimage.gaussian_filter(rng.standard_normal(SHAPE, dtype=np.float32), 1.5) * 300
    return synthetic, ct, body


def skimage_metrics(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """MAE, PSNR and SSIM with numpy and scikit-image, as the SynthRAD2023 evaluation code does."""
    pred, target = pred.astype(np.float64), target.astype(np.float64)
    mae = float(np.abs(pred - target)[mask].mean())
    pred_c, target_c = np.clip(pred, -1024, 3000), np.clip(target, -1024, 3000)
    psnr = peak_signal_noise_ratio(target_c[mask], pred_c[mask], data_range=4024)
    _, full_map = structural_similarity(np.where(mask, target_c, -1024.0) + 1024,
                                        np.where(mask, pred_c, -1024.0) + 1024, data_range=4024, full=True)
    return {"mae": mae, "psnr": float(psnr), "ssim": float(crop(full_map, 3)[crop(mask, 3)].mean(dtype=np.float64))}


def best_seconds(runs: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, float], dict[str, object]]:
    """Smallest wall time of ``repeats`` calls of each run, and its last result. The runs take turns,
    so a shared machine's changing load weighs on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, object] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            results[name] = run()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pred, target, mask = phantom_pair()
    print(f"pair {SHAPE}, {int(mask.sum())} mask voxels, torch threads {torch.get_num_threads()}", flush=True)

    everywhere = np.ones(SHAPE, bool)
    runs = {
        "medtrans cpu": lambda: volume_metrics(pred, target, mask, device="cpu"),
        "scikit-image": lambda: skimage_metrics(pred, target, mask),
        "medtrans cpu, mask = whole volume": lambda: volume_metrics(pred, target, everywhere, device="cpu"),
        "scikit-image, mask = whole volume": lambda: skimage_metrics(pred, target, everywhere),
    }
    if torch.cuda.is_available():
        volume_metrics(pred, target, mask, device="cuda")  # warm-up: CUDA context and kernels
        runs["medtrans gpu (with the host-to-device copy)"] = lambda: volume_metrics(pred, target, mask, device="cuda")
    seconds, results = best_seconds(runs, args.repeats)
    for name, result in results.items():
        print(f"{name}: {seconds[name]:.3f} s  {result}", flush=True)
    ours, ref = results["medtrans cpu"], results["scikit-image"]
    print("difference medtrans - scikit-image: " + ", ".join(f"{k} {ours[k] - ref[k]:.2e}" for k in ref))
    cpu_s, sk_s = seconds["medtrans cpu"], seconds["scikit-image"]
    gpu_s = seconds.get("medtrans gpu (with the host-to-device copy)")
    print(json.dumps({"bench": "metrics", "cpu_s": round(cpu_s, 3), "gpu_s": None if gpu_s is None else round(gpu_s, 4),
                      "skimage_s": round(sk_s, 3),
                      "cpu_whole_volume_s": round(seconds["medtrans cpu, mask = whole volume"], 3),
                      "skimage_whole_volume_s": round(seconds["scikit-image, mask = whole volume"], 3),
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

"""Seconds per full-size MR/CT pair (about 256 x 256 x 180 at 1 mm) for resample + register + mask +
normalize, and the target registration error reached against the phantom's recorded truth.

Runs `prepare_pair` (the preprocessing stage's per-pair work, without writing files) with the
default preprocess settings at 1 mm, on a few seeded phantom pairs. Target: <= 10 s per pair on
2 CPU cores at TRE < 1 mm. Last line: {"bench": "preprocess", "seconds_per_pair": S, "tre_mm": T}

Usage: python benchmarks/bench_preprocess.py [--pairs N] [--spacing 1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from medtrans.config import PreprocessConfig
from medtrans.phantoms import make_paired_subject
from medtrans.preprocess import body_mask
from medtrans.preprocess.pipeline import prepare_pair
from medtrans.preprocess.register import target_registration_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--spacing", type=float, default=1.0)
    args = parser.parse_args()
    cfg = PreprocessConfig(spacing_mm=(args.spacing,) * 3)
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f} (other work slows the figures)")
    seconds, tres = [], []
    for seed in range(args.pairs):
        mr, ct, truth = make_paired_subject(seed=100 + seed, size="full")
        started = time.perf_counter()
        pair = prepare_pair(mr, ct, cfg, seed=0)
        seconds.append(time.perf_counter() - started)
        body = np.argwhere(body_mask(ct, "ct"))[::200]
        tre = target_registration_error(pair.transform, np.asarray(truth["fixed_to_moving"]), ct.index_to_world(body))
        tres.append(float(tre.mean()))
        print(f"pair {seed}: CT {ct.shape} MR {mr.shape}: {seconds[-1]:.1f} s, TRE {tres[-1]:.2f} mm, "
              f"Dice {pair.registration['dice_before']:.3f} -> {pair.registration['dice_after']:.3f}", flush=True)
    print(json.dumps({"bench": "preprocess", "seconds_per_pair": round(float(np.mean(seconds)), 2),
                      "tre_mm": round(float(np.mean(tres)), 3)}))


if __name__ == "__main__":
    main()

"""Volume-in, volume-out inference on a full-size scan (about 256 x 256 x 180 at 1 mm).

Builds the generator of a pipeline config (random weights: the time is the same as trained ones),
translates a full-size phantom MR with the exact code path of `medtrans infer` (resample, mask,
crop, normalize, network, denormalize, resample back with the mask) and prints total seconds,
seconds in the network alone, their overhead ratio R = (T - N) / N (target <= 0.2), and the
process's peak resident memory, then the seconds of each step. Last line:
{"bench": "infer", "total_s": T, "network_s": N, "overhead_ratio": R, "peak_rss_mb": M}

The default config is the production one (1 mm, U-Net ngf 64), the network a full-size scan
meets. The demo's (2 mm, ngf 32) network is 25x cheaper than that, so its ratio measures
the toy, not the overhead: pass --config pipelines/demo.yaml to see it.

Usage: python benchmarks/bench_infer.py [--config pipelines/mri2ct_pix2pix.yaml] [--device auto]
       [--input-shape 512 512 300]   (the memory bound: the phantom resampled to that many voxels)
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
import torch

from medtrans.config import load_config
from medtrans.data.builder import channels
from medtrans.data.views import view_from_config
from medtrans.device import resolve_device
from medtrans.infer import Timing, Translator, translate_scan
from medtrans.io import Volume
from medtrans.models import build_network, generator_args
from medtrans.phantoms import make_paired_subject
from medtrans.precision import autocast_dtype
from medtrans.preprocess.resample import Grid, resample_to_grid


def on_shape(vol: Volume, shape: tuple[int, int, int]) -> Volume:
    """``vol`` resampled to ``shape`` voxels over the same field of view (int16, like a scanner's file)."""
    spacing = tuple(float(s) * n / m for s, n, m in zip(vol.spacing_mm, vol.shape, shape))
    first = vol.index_to_world(np.array([(n / m - 1) / 2 for n, m in zip(vol.shape, shape)]))
    resampled = resample_to_grid(vol, Grid(shape, spacing, tuple(first), vol.direction), "linear", "mr")
    return resampled.with_array(resampled.array.astype(np.int16))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="pipelines/mri2ct_pix2pix.yaml")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--input-shape", type=int, nargs=3, metavar=("X", "Y", "Z"),
                        help="resample the phantom MR to this many voxels over the same field of view first "
                             "(e.g. 512 512 300 to check the 4 GB memory bound)")
    args = parser.parse_args()
    cfg = load_config(args.config)
    device = resolve_device(args.device)
    made = time.perf_counter()
    mr, _, _ = make_paired_subject(seed=7, size="full")
    if args.input_shape:
        mr = on_shape(mr, tuple(args.input_shape))
    print(f"phantom MR {mr.shape} at {mr.spacing_mm} mm made in {time.perf_counter() - made:.1f} s", flush=True)
    view = view_from_config(cfg.dataset)
    in_channels, out_channels = channels(cfg)
    image_size = cfg.dataset.patch_size if view.spatial_dims == 3 else (128, 128)
    torch.manual_seed(0)
    generator = build_network(generator_args(cfg.model, view.spatial_dims, in_channels, out_channels, image_size))
    generator = generator.to(device).eval()
    if cfg.train.channels_last and view.spatial_dims == 2:
        generator = generator.to(memory_format=torch.channels_last)
    translator = Translator(generator, cfg, "mr", "ct", device, autocast_dtype(device, cfg.train.amp))
    translate_scan(translator, mr)  # warm-up: kernel selection and allocator
    timing = Timing()
    translate_scan(translator, mr, timing=timing)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = (timing.total_s - timing.network_s) / timing.network_s
    print(f"total {timing.total_s:.2f} s, network {timing.network_s:.2f} s, overhead ratio {ratio:.3f}, "
          f"peak RSS {peak_mb:.0f} MB on {device}; steps: "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timing.steps.items()))
    print(json.dumps({"bench": "infer", "total_s": round(timing.total_s, 3), "network_s": round(timing.network_s, 3),
                      "overhead_ratio": round(ratio, 4), "peak_rss_mb": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()

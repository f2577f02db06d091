"""`medtrans train CONFIG`: train the configured recipe in the run folder (resumable, torchrun-aware)."""

from __future__ import annotations

import argparse
import dataclasses

from medtrans.config import load_config, resolve_paths


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train pix2pix or CycleGAN on a preprocessed cohort",
        description="Train the recipe in CONFIG (train.recipe) on <run>/preprocessed. Writes the run "
        "folder: config.yaml, environment.json, split.json, checkpoints/last.pt and best.pt, "
        "logs/metrics.csv and TensorBoard events. Multi-GPU / multi-node: launch with "
        "`torchrun --nproc_per_node N -m medtrans train CONFIG`.",
    )
    parser.add_argument("config", help="study YAML config")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <run>/checkpoints/last.pt exactly (weights, optimizers, RNG, step)")
    parser.add_argument("--steps", type=int, help="override train.steps (e.g. to extend a finished run)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medtrans.train import train

    cfg = resolve_paths(load_config(args.config))
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=args.steps))
    checkpoint = train(cfg, resume=args.resume)
    print(f"checkpoint: {checkpoint}")
    return 0

"""`medtrans evaluate`: metrics of synthetic CTs against real CTs, per volume and summarized."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="MAE, PSNR, SSIM (SynthRAD2023), tissue MAE and bone Dice of synthetic vs real CTs",
        description="Compare each synthetic CT in --pred with the real CT of the same subject in --target "
        "(matched by file name without extension; both in HU, on the same grid), inside the body mask. "
        "Writes metrics.csv (one row per volume) and summary.json to --out.",
    )
    parser.add_argument("--pred", required=True, type=Path, help="folder of synthetic CTs (HU)")
    parser.add_argument("--target", required=True, type=Path, help="folder of real CTs (HU)")
    parser.add_argument("--mask", type=Path, default=None,
                        help="folder of body masks named by subject (default: computed from the real CT)")
    parser.add_argument("--out", required=True, type=Path, help="folder for metrics.csv and summary.json")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the folders and print the mean and std of each metric."""
    # Imported here so that `medtrans --help` does not wait for torch and MONAI.
    from medtrans.evaluate import METRIC_NAMES, evaluate_folder

    summary = evaluate_folder(args.pred, args.target, args.mask, args.out, device=args.device)
    print(f"evaluated {summary['n']} volume(s); written {args.out / 'metrics.csv'} and {args.out / 'summary.json'}")
    for name in METRIC_NAMES:
        stats = summary["metrics"][name]
        if stats["n"]:
            print(f"  {name:10s} {stats['mean']:10.4f} +/- {stats['std']:.4f} {summary['units'][name]:>3s}  (n={stats['n']})")
        else:
            print(f"  {name:10s} {'n/a':>10s}")
    return 0

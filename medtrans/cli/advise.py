"""`medtrans advise A B`: pix2pix or CycleGAN for two cohorts, with the reasons."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "advise",
        help="recommend pix2pix or CycleGAN for two cohorts",
        description="Look at a source cohort (A) and a target cohort (B) and recommend pix2pix "
        "(subjects pair up by ID and their scans register onto each other) or CycleGAN (they do "
        "not). A folder in paired layout (<subject>/mr.* + ct.*) can be given as both A and B, or "
        "alone. Same-ID pairs are registered and compared with mismatched pairs, so matching file "
        "names alone never decide.",
    )
    parser.add_argument("source", type=Path, help="cohort A (e.g. MR): folder of scans, DICOM folders or a CSV")
    parser.add_argument("target", type=Path, nargs="?", help="cohort B (e.g. CT); default: the same folder")
    parser.add_argument("--modality-a", choices=["mr", "ct"], default="mr")
    parser.add_argument("--modality-b", choices=["mr", "ct"], default="ct")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medtrans.advise import advise

    advice = advise(args.source, args.target or args.source, args.modality_a, args.modality_b)
    for reason in advice.reasons:
        print(f"- {reason}")
    print(f"Recommendation: {advice.recommendation}")
    return 0

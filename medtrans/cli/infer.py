"""`medtrans infer`: translate scans with a trained checkpoint, writing results on the inputs' grids."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer",
        help="translate scans with a checkpoint (volume in, volume out)",
        description="Replay the run's preprocessing on each input scan, run the generator (slices in "
        "batches, or a gaussian-blended sliding window in 3D), invert the normalization (HU for CT) "
        "and write the result with the input's exact size, spacing, origin and direction.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint file (RUN/checkpoints/best.pt)")
    parser.add_argument("--input", required=True, type=Path,
                        help="a scan (NIfTI/MHA/NRRD file or DICOM series folder), a folder of scans, "
                        "or a CSV with columns subject,image")
    parser.add_argument("--output", required=True, type=Path,
                        help="output file (.nii.gz/.mha/.nrrd) or DICOM folder for one scan; a folder for several")
    parser.add_argument("--series", metavar="UID",
                        help="SeriesInstanceUID to translate when the --input DICOM folder holds several series")
    parser.add_argument("--dicom", action="store_true", help="with several inputs, write DICOM series folders")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    parser.add_argument("--direction", choices=["ab", "ba"], default="ab",
                        help="CycleGAN only: translate A -> B (default) or B -> A")
    parser.add_argument("--keep-patient-tags", action="store_true",
                        help="copy patient and study identifiers from a DICOM input into DICOM output "
                        "(left out by default)")
    parser.add_argument("--keep-background", action="store_true",
                        help="keep the network output outside the body instead of writing air (-1000 HU)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medtrans.device import resolve_device
    from medtrans.infer import Translator, plan_jobs, run_jobs

    jobs = plan_jobs(args.input, args.output, dicom_output=args.dicom, series_uid=args.series)
    translator = Translator.from_checkpoint(args.checkpoint, resolve_device(args.device), args.direction)
    timing = run_jobs(translator, jobs, args.keep_patient_tags, False if args.keep_background else None)
    for job in jobs:
        print(f"{job.subject}: {job.output}")
    print(f"{len(jobs)} scan(s) in {timing.total_s:.1f} s ({timing.network_s:.1f} s in the network)")
    return 0

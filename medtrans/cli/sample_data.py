"""`medtrans sample-data`: write seeded phantom cohorts (paired MR + CT, unpaired healthy / pathology MR)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medtrans.errors import MedtransError

SIZES = ("tiny", "small", "full")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sample-data`` subcommand."""
    parser = subparsers.add_parser(
        "sample-data",
        help="write seeded head-phantom cohorts: paired T1 MR + CT with true transforms, unpaired MR",
        description="Write paired/<pNN>/{mr,ct}.nii.gz + truth.json (the true CT->MR rigid transform), "
        "unpaired/healthy/<hNN>/image.nii.gz, unpaired/pathology/<dNN>/{image,lesion}.nii.gz, a DICOM "
        "copy of the first paired subject in dicom/<pNN>/{mr,ct}/, and cohorts.json. The same "
        "arguments give the same NIfTI bytes.",
    )
    parser.add_argument("outdir", type=Path, help="output folder (new, empty, or made by sample-data before)")
    parser.add_argument("--size", choices=SIZES, default="small",
                        help="grids: small (~1.75-2 mm voxels, the committed sample data), full (~1 mm, "
                        "256x256x180 CT, for benchmarks), tiny (4-6 mm, for tests); default small")
    parser.add_argument("--n-paired", type=int, default=8, help="paired subjects (default 8)")
    parser.add_argument("--n-unpaired", type=int, default=8, help="subjects per unpaired cohort (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.set_defaults(run=run)


def check_outdir(outdir: Path, subjects: set[str]) -> None:
    """Refuse a file, a non-empty folder not written by sample-data, or one whose earlier cohort
    has subjects this run would not rewrite (they would be mixed into the new cohort)."""
    if outdir.exists() and not outdir.is_dir():
        raise MedtransError(f"{outdir}: exists and is not a folder")
    if not outdir.is_dir() or not any(outdir.iterdir()):
        return
    record_path = outdir / "cohorts.json"
    if not record_path.is_file():
        raise MedtransError(f"{outdir}: folder is not empty and has no cohorts.json from sample-data; "
                            "choose a new or empty folder")
    try:
        earlier = {entry["subject"] for entry in json.loads(record_path.read_text())["subjects"]}
    except (ValueError, KeyError, TypeError) as err:
        raise MedtransError(f"{record_path}: unreadable sample-data record ({err}); choose a new folder") from None
    stale = sorted(earlier - subjects)
    if stale:
        raise MedtransError(f"{outdir}: holds subjects {', '.join(stale)} from an earlier, larger cohort; "
                            "choose a new or empty folder")


def run(args: argparse.Namespace) -> int:
    """Generate the cohorts and print what was written."""
    from medtrans.phantoms import cohort_plan, write_cohorts

    for name in ("n_paired", "n_unpaired"):
        if getattr(args, name) < 0:
            raise MedtransError(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(args, name)}")
    check_outdir(args.outdir, {entry["subject"] for entry in cohort_plan(args.n_paired, args.n_unpaired, args.seed)})
    record = write_cohorts(args.outdir, args.n_paired, args.n_unpaired, args.size, args.seed)
    total_mb = sum(p.stat().st_size for p in args.outdir.rglob("*") if p.is_file()) / 1e6
    print(f"wrote {len(record['subjects'])} subject(s) ({args.n_paired} paired, {args.n_unpaired} healthy, "
          f"{args.n_unpaired} pathology; size {args.size}, seed {args.seed}) to {args.outdir} "
          f"in {record['seconds']:.1f} s, {total_mb:.1f} MB")
    if args.n_paired and not record["dicom"]:
        print("note: no DICOM copy written (medtrans.io.dicom is unavailable)")
    return 0

"""`medtrans preprocess CONFIG`: reorient, resample, register, mask, crop and normalize a cohort."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from medtrans.config import load_config, resolve_paths
from medtrans.errors import MedtransError
from medtrans.preprocess.stage import parse_shard, rebuild_manifest, run_preprocess


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `preprocess` subcommand."""
    parser = subparsers.add_parser(
        "preprocess",
        help="preprocess the cohort named in a config (see docs/preprocess.md)",
        description="Reorient and resample every subject, register MR onto CT (paired), build body "
        "masks, crop/pad and normalize, and write <out>/manifest.json. Unchanged subjects are "
        "skipped, so an interrupted run resumes where it stopped.",
    )
    parser.add_argument("config", help="study config (YAML); its data section names the cohort")
    parser.add_argument("--out", type=Path, help="output folder (default: the config's preprocessed_dir, else <run_dir>/preprocessed)")
    parser.add_argument("--workers", type=int, help="subjects processed in parallel (default: preprocess.workers)")
    parser.add_argument("--shard", metavar="K/N", help="process only shard K of N (1-based), e.g. for a job array")
    parser.add_argument("--merge-only", action="store_true",
                        help="only rebuild manifest.json from the subject records (after all shards finished)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the stage; exit status 1 when a subject failed (flagged subjects are not failures)."""
    cfg = resolve_paths(load_config(args.config))
    out_dir = (args.out if args.out is not None else cfg.preprocessed_path).resolve()
    if args.workers is not None and args.workers < 1:
        raise MedtransError(f"--workers: must be at least 1, got {args.workers}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.merge_only:
        manifest = rebuild_manifest(cfg, out_dir)
        print(f"{out_dir / 'manifest.json'}: {len(manifest['subjects'])} subject record(s), "
              f"{len(manifest['missing'])} missing")
        return 0
    shard = parse_shard(args.shard) if args.shard else None
    summary = run_preprocess(cfg, out_dir, args.workers, shard, progress=not args.no_progress)
    counts = summary.counts
    print(f"{out_dir / 'manifest.json'}: {counts['ok']} ok, {counts['flagged']} flagged, {counts['failed']} failed "
          f"({counts['skipped']} unchanged) in this run; manifest lists {len(summary.manifest['subjects'])} subject(s)")
    return 1 if counts["failed"] else 0

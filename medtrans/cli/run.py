"""`medtrans run CONFIG`: the whole study, preprocess -> train -> infer -> evaluate -> report."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from medtrans.pipeline.stages import STAGES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a whole study from one config (preprocess, train, infer, evaluate, report)",
        description="Run every stage of the study in CONFIG. A stage whose inputs and settings are "
        "unchanged since it completed is skipped (hashes in <run>/stages.json), so an interrupted "
        "or extended study resumes where it stopped; training resumes from its last checkpoint. "
        "With compare.recipes set, each recipe gets its own study on the same preprocessed cohort "
        "and split, and a comparison report is written.",
    )
    parser.add_argument("config", type=Path, help="study YAML config (see pipelines/ and docs/config.md)")
    parser.add_argument("--from", dest="force_from", choices=STAGES,
                        help="rerun this stage and every stage after it, even if up to date")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medtrans.config import load_config, resolve_paths
    from medtrans.pipeline import Study, run_comparison

    cfg = resolve_paths(load_config(args.config))
    if cfg.compare.recipes:
        raw_values = yaml.safe_load(args.config.read_text())
        report = run_comparison(cfg, raw_values, args.force_from)
    else:
        report = Study(cfg, args.force_from).run()
    print(f"Report: {report}")
    return 0

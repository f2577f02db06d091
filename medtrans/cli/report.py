"""`medtrans report RUN`: one self-contained HTML report (embedded figures) of a run folder.

Example:
    $ medtrans report runs/demo
    $ medtrans report runs/demo --out ~/Desktop/demo.html
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="build one self-contained HTML report of a run folder",
        description="Build an HTML report of a run folder: per-subject metrics and summary, box plots, "
        "slice montages of the test subjects (input, synthetic, real, error), training curves, "
        "registration quality, dataset split, config and environment. Images are embedded, so the one "
        "file opens offline. Missing stages are reported, not fatal.",
    )
    parser.add_argument("run_dir", metavar="RUN", type=Path, help="the run folder (runs/<name>)")
    parser.add_argument("--out", type=Path, default=None, help="HTML file to write (default: RUN/report.html)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and print its path."""
    from medtrans.report import build_report  # matplotlib loads only when a report is built

    print(build_report(args.run_dir, args.out))
    return 0

"""The study report: one self-contained HTML file built from a run folder.

Everything shown is recomputed from the files of the run folder (config, environment, split,
preprocessing manifest, training log, predictions, evaluation), so rebuilding the report of an
unchanged folder gives the same bytes. Only subject IDs identify scans: no file paths of inputs,
no DICOM patient or study tags.

Example:
    >>> path = build_report("runs/demo")          # doctest: +SKIP
    >>> path.name
    'report.html'
"""

from __future__ import annotations

from pathlib import Path

from medtrans.errors import MedtransError
from medtrans.io import write_text_atomic
from medtrans.report.collect import RunRecord, collect_run
from medtrans.report.sections import render_report

# Any one of these marks a folder as a medtrans run folder.
RUN_MARKERS = ("config.yaml", "environment.json", "split.json", "preprocessed", "logs", "predictions", "evaluation")

__all__ = ["build_report", "collect_run", "render_report"]


def check_run_folder(run_dir: Path) -> None:
    """Refuse a path that is not a run folder, naming what was expected.

    Raises:
        MedtransError: ``run_dir`` is missing, not a folder, or holds none of the run folder's files.
    """
    if not run_dir.is_dir():
        raise MedtransError(f"{run_dir}: run folder not found")
    if not any((run_dir / marker).exists() for marker in RUN_MARKERS):
        raise MedtransError(
            f"{run_dir}: not a medtrans run folder (none of {', '.join(RUN_MARKERS)} found); "
            "pass runs/<name> as created by `medtrans train`"
        )


def output_path(run: RunRecord, out: str | Path | None) -> Path:
    """Where the report goes: ``out`` (a file, or a folder to hold report.html), else ``<run>/report.html``.

    Raises:
        MedtransError: ``out`` is one of the files the report reads.
    """
    path = run.folder / "report.html" if out is None else Path(out)
    if path.is_dir():
        path = path / "report.html"
    if any(path.resolve() == source.resolve() for source in run.sources):
        raise MedtransError(f"{path}: is an input of the report; choose another --out")
    return path


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Build the HTML report of a run folder and write it atomically; return its path.

    Args:
        run_dir: the run folder (``runs/<name>``).
        out: the HTML file to write (or a folder for report.html); default ``<run_dir>/report.html``.

    Raises:
        MedtransError: ``run_dir`` is not a run folder, or ``out`` would overwrite one of its inputs.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir)
    run = collect_run(run_dir)
    path = output_path(run, out)
    write_text_atomic(path, render_report(run))
    return path

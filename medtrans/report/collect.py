"""Read a run folder (docs/design.md) into one `RunRecord` for the report.

Every piece is optional: a missing or unreadable file becomes a line in ``RunRecord.missing`` and
the field stays None, so a report can be built at any stage of a study. Nothing here reads
volumes (see `medtrans.report.montage`) or DICOM identity tags.

Example:
    >>> run = collect_run("runs/demo")                        # doctest: +SKIP
    >>> run.name, run.recipe, sorted(run.predictions)[:2]    # doctest: +SKIP
    ('demo', 'pix2pix', ['s07', 's11'])
"""

from __future__ import annotations

import csv
import datetime
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from medtrans.io.files import volume_suffix

STAT_KEYS = ("mean", "std", "median", "q1", "q3", "n")
# Files whose last change dates the training, most telling first (the log is rewritten every step).
TRAINING_DATE_SOURCES = ("logs/metrics.csv", "checkpoints/last.pt", "environment.json")
# An absolute POSIX or Windows path inside free text (a failure reason may name the patient's file).
# A trailing ':', '.' or ')' is punctuation of the sentence, not part of the path.
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\][^\s'\",;]*[^\s'\",;:.)]")


@dataclass(frozen=True)
class Series:
    """One logged quantity against training step (finite values only)."""

    steps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class MetricsTable:
    """evaluation/metrics.csv: cells as written (strings), and which columns are numeric."""

    columns: list[str]
    rows: list[dict[str, str]]
    numeric: list[str]

    def values(self, column: str) -> np.ndarray:
        """The column as float64, one value per row (NaN where empty or undefined)."""
        return np.array([to_float(row.get(column, "")) for row in self.rows], dtype=np.float64)


@dataclass(frozen=True)
class Summary:
    """evaluation/summary.json, read generically: statistics per metric, units, other facts."""

    stats: dict[str, dict[str, float | None]]
    units: dict[str, str]
    facts: dict[str, str]


@dataclass
class RunRecord:
    """Everything the report shows, as read from the run folder; None where a file is missing."""

    folder: Path
    config_text: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] | None = None
    split: dict[str, list[str]] | None = None
    manifest: dict[str, Any] | None = None
    training: dict[str, Series] | None = None
    evaluation: MetricsTable | None = None
    summary: Summary | None = None
    baseline_evaluation: MetricsTable | None = None
    baseline: Summary | None = None
    predictions: dict[str, Path] = field(default_factory=dict)
    trained_on: str | None = None
    missing: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        """Study name from the config, else the run folder's name."""
        return str(self.config.get("name") or self.folder.name)

    def setting(self, section: str, key: str, default: Any = None) -> Any:
        """One value of the resolved config (``section.key``), or ``default``."""
        values = self.config.get(section)
        return values.get(key, default) if isinstance(values, dict) else default

    @property
    def preprocessed_dir(self) -> Path:
        """The preprocessed cohort: the config's ``preprocessed_dir`` when set, else ``<run>/preprocessed``."""
        # A comparison's sub-runs share their parent's cohort through preprocessed_dir.
        configured = self.config.get("preprocessed_dir")
        return Path(configured) if configured else self.folder / "preprocessed"

    @property
    def mode(self) -> str:
        """'paired' or 'unpaired': from the manifest, else from the config's data section."""
        if self.manifest and self.manifest.get("mode") in ("paired", "unpaired"):
            return str(self.manifest["mode"])
        return "paired" if self.setting("data", "paired") else "unpaired"

    @property
    def records(self) -> dict[str, dict[str, Any]]:
        """Manifest subject records by subject ID (empty without a manifest)."""
        subjects = (self.manifest or {}).get("subjects") or []
        return {str(r["subject"]): r for r in subjects if isinstance(r, dict) and "subject" in r}

    @property
    def test_subjects(self) -> list[str]:
        """Subjects to show as montages: the split's test set, else every prediction."""
        if self.split is not None:
            return [str(s) for s in self.split.get("test", [])]
        return sorted(self.predictions)


def to_float(text: Any) -> float:
    """A CSV/JSON cell as float; NaN for empty, missing or non-numeric cells."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    try:
        return float(str(text).strip())
    except ValueError:
        return math.nan


def is_number(text: str) -> bool:
    """True when a CSV cell holds a number (NaN included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def redact_paths(text: str) -> str:
    """``text`` with absolute file paths replaced by ``<path>`` (paths may carry patient names)."""
    return ABSOLUTE_PATH.sub("<path>", text)


def collect_run(run_dir: str | Path) -> RunRecord:
    """Read every report input of a run folder; missing or unreadable pieces are listed, not raised."""
    run = RunRecord(folder=Path(run_dir))
    read_config(run)
    run.environment = read_json(run, "environment.json", "environment record", dict)
    run.split = read_json(run, "split.json", "dataset split (written by `medtrans train`)", dict)
    manifest = os.path.relpath(run.preprocessed_dir / "manifest.json", run.folder)
    run.manifest = read_json(run, manifest, "preprocessing manifest", dict)
    run.training = read_training_log(run)
    run.evaluation = read_metrics_table(run, "evaluation", "per-subject evaluation (run `medtrans evaluate`)")
    summary = read_json(run, "evaluation/summary.json", "evaluation summary", dict)
    run.summary = parse_summary(summary) if summary is not None else None
    read_baseline(run)
    run.predictions = list_predictions(run.folder / "predictions")
    if not run.predictions:
        run.missing.append("predictions/: no synthetic volumes yet (run `medtrans infer`)")
    run.trained_on = training_date(run.folder)
    return run


def read_text(run: RunRecord, relative: str, what: str) -> str | None:
    """A file of the run folder as text, or None (noted in ``run.missing``)."""
    path = run.folder / relative
    if not path.is_file():
        run.missing.append(f"{relative}: no {what}")
        return None
    run.sources.append(path)
    return path.read_text()


def read_json(run: RunRecord, relative: str, what: str, kind: type) -> Any:
    """A JSON file of the run folder, or None when missing, invalid or not a ``kind``."""
    text = read_text(run, relative, what)
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        run.missing.append(f"{relative}: not valid JSON ({err.msg}, line {err.lineno})")
        return None
    if not isinstance(value, kind):
        run.missing.append(f"{relative}: expected a JSON {kind.__name__}, got {type(value).__name__}")
        return None
    return value


def read_config(run: RunRecord) -> None:
    """config.yaml: its text as written, and its values (left empty when the YAML is invalid)."""
    run.config_text = read_text(run, "config.yaml", "resolved config")
    if run.config_text is None:
        return
    try:
        values = yaml.safe_load(run.config_text)
    except yaml.YAMLError as err:
        run.missing.append(f"config.yaml: not valid YAML ({err})")
        return
    run.config = values if isinstance(values, dict) else {}


def read_csv_rows(run: RunRecord, relative: str, what: str) -> tuple[list[str], list[dict[str, str]]] | None:
    """(columns, rows) of a CSV file in the run folder; None when it is missing or has no header."""
    text = read_text(run, relative, what)
    if text is None:
        return None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames:
        run.missing.append(f"{relative}: empty file")
        return None
    rows = [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    return [c.strip() for c in reader.fieldnames], rows


def read_training_log(run: RunRecord) -> dict[str, Series] | None:
    """logs/metrics.csv as one `Series` per column (loss_*, lr, seconds, val_*); empty cells skipped."""
    table = read_csv_rows(run, "logs/metrics.csv", "training log (written by `medtrans train`)")
    if table is None:
        return None
    columns, rows = table
    if "step" not in columns:
        run.missing.append("logs/metrics.csv: no 'step' column")
        return None
    steps = np.array([to_float(row.get("step", "")) for row in rows], dtype=np.float64)
    series = {}
    for column in columns:
        if column == "step":
            continue
        values = np.array([to_float(row.get(column, "")) for row in rows], dtype=np.float64)
        kept = np.isfinite(values) & np.isfinite(steps)
        if kept.any():
            series[column] = Series(steps[kept], values[kept])
    return series


def read_baseline(run: RunRecord) -> None:
    """evaluation/baseline/ (the lookup baseline of paired studies), when the evaluation wrote one.

    Its absence is normal (unpaired studies, older runs), so it is not listed as missing.
    """
    if not (run.folder / "evaluation" / "baseline" / "summary.json").is_file():
        return
    run.baseline_evaluation = read_metrics_table(run, "evaluation/baseline", "per-subject lookup baseline")
    summary = read_json(run, "evaluation/baseline/summary.json", "lookup baseline summary", dict)
    run.baseline = parse_summary(summary) if summary is not None else None


def read_metrics_table(run: RunRecord, folder: str, what: str) -> MetricsTable | None:
    """``<folder>/metrics.csv``; numeric columns are those (besides 'subject') holding only numbers."""
    table = read_csv_rows(run, f"{folder}/metrics.csv", what)
    if table is None:
        return None
    columns, rows = table
    numeric = [c for c in columns if c != "subject" and rows
               and all(is_number(row.get(c, "")) for row in rows if row.get(c, ""))
               and any(row.get(c, "") for row in rows)]
    return MetricsTable(columns, rows, numeric)


def parse_summary(data: dict[str, Any]) -> Summary:
    """Statistics ({"mean", ...} dicts at any depth; a top-level "metrics" key is transparent), units, facts."""
    stats: dict[str, dict[str, float | None]] = {}
    facts: dict[str, str] = {}

    def walk(name: str, value: Any) -> None:
        if isinstance(value, dict) and "mean" in value:
            stats[name] = {k: (None if value.get(k) is None else to_float(value[k])) for k in STAT_KEYS}
        elif isinstance(value, dict):
            for key, inner in value.items():
                # "metrics" and "directions" group levels add nothing a reader needs in a label
                part = "" if key in ("metrics", "directions") else str(key)
                walk(".".join(p for p in (name, part) if p), inner)
        else:
            facts[name] = value if isinstance(value, str) else json.dumps(value)

    units = data.get("units") if isinstance(data.get("units"), dict) else {}
    for key, value in data.items():
        if key != "units":
            walk("" if key in ("metrics", "directions") else str(key), value)
    return Summary(stats, {str(k): str(v) for k, v in units.items()}, facts)


def list_predictions(folder: Path) -> dict[str, Path]:
    """Synthetic volumes by subject: ``predictions/<subject>.nii.gz`` (any volume suffix)."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in sorted(folder.iterdir()):
        suffix = volume_suffix(path)
        if path.is_file() and not path.name.startswith(".") and suffix in (".nii", ".nii.gz", ".mha", ".nrrd"):
            found[path.name[: -len(suffix)]] = path
    return found


def training_date(folder: Path) -> str | None:
    """When training last wrote its files (UTC, to the minute), from the files' modification times."""
    for relative in TRAINING_DATE_SOURCES:
        path = folder / relative
        if path.is_file():
            stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.timezone.utc)
            return stamp.strftime("%Y-%m-%d %H:%M UTC")
    return None

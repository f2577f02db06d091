"""The comparison report: recipes trained on one preprocessed cohort, split and budget, side by side.

`medtrans.pipeline.compare` trains each recipe in a sub-run folder of one parent folder
(``<runs>/<name>/pix2pix/``, ``<runs>/<name>/cyclegan/``); this module reads those run folders with
`collect_run` and writes ``<runs>/<name>/compare.html``: the setup (split, steps, batch size,
training time, parameters), the test metrics per subject side by side (with the lookup baseline when
it was evaluated), the paired differences with a sign count and a Wilcoxon signed-rank test, box
plots, and montages of every test subject with each recipe's synthetic CT and error map.

Like the study report, the page is self-contained, identifies scans only by subject ID, and is
rebuilt byte for byte from unchanged folders.

Example:
    >>> parent = Path("runs/cmp")
    >>> path = build_comparison(parent, [parent / "pix2pix", parent / "cyclegan"])  # doctest: +SKIP
    >>> path.name                                                                   # doctest: +SKIP
    'compare.html'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from tqdm import tqdm

from medtrans.errors import MedtransError
from medtrans.io import write_text_atomic
from medtrans.models import build_network
from medtrans.report import check_run_folder, figures
from medtrans.report.collect import MetricsTable, RunRecord, collect_run
from medtrans.report.html import (
    Section,
    anchor_id,
    box,
    esc,
    figure,
    format_number,
    note,
    number_cell,
    page,
    table,
    text_cell,
)
from medtrans.report.montage import CT_WINDOW_HU, ERROR_MAX_HU, subject_montage
from medtrans.train.checkpoint import load_checkpoint

# SynthRAD2023's headline metrics, in the order the tables show them.
COMPARED_METRICS = ("mae", "psnr", "ssim", "bone_dice")
METRIC_TITLES = {"mae": "MAE", "psnr": "PSNR", "ssim": "SSIM", "bone_dice": "bone Dice"}
# The verdict line speaks about the first of these that every recipe has.
VERDICT_METRICS = ("mae", "psnr", "ssim", "bone_dice")
# Below this many paired subjects a Wilcoxon signed-rank test cannot reach p < 0.05 (n = 5 gives 0.0625
# at best, two-sided), so it is not reported.
MIN_SUBJECTS_FOR_TEST = 5
BASELINE_LABEL = "lookup baseline"
RECIPE_COLOURS = (figures.LINE_COLOUR, "#d9822b", "#2e8b57", "#8e44ad")
BASELINE_COLOUR = "#7f8c8d"
# Checkpoints in the order inference uses them; any one gives the network sizes.
CHECKPOINT_NAMES = ("best.pt", "last.pt")


@dataclass(frozen=True)
class Contender:
    """One column group of the comparison: a recipe's test metrics, or the lookup baseline's."""

    label: str
    metrics: MetricsTable | None
    colour: str

    def value(self, subject: str, metric: str) -> tuple[float, str]:
        """(value, exact text as written in metrics.csv) of one subject; (NaN, '') when absent."""
        for row in self.metrics.rows if self.metrics else []:
            if row.get("subject") == subject:
                text = row.get(metric, "")
                return (float(text) if text else math.nan), text
        return math.nan, ""

    def values(self, subjects: list[str], metric: str) -> np.ndarray:
        """One value per subject (NaN where absent or undefined)."""
        return np.array([self.value(s, metric)[0] for s in subjects], dtype=np.float64)


@dataclass(frozen=True)
class PairedDifference:
    """Per-subject ``later - first`` for one metric, over the subjects where both are defined."""

    metric: str
    subjects: list[str]
    differences: np.ndarray
    lower_is_better: bool

    @property
    def n(self) -> int:
        return int(self.differences.size)

    @property
    def mean(self) -> float | None:
        return float(self.differences.mean()) if self.n else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1): these differences estimate a population's."""
        return float(self.differences.std(ddof=1)) if self.n > 1 else None

    def wins(self) -> tuple[int, int, int]:
        """(subjects where the later recipe is better, where the first is better, ties)."""
        later_better = self.differences < 0 if self.lower_is_better else self.differences > 0
        first_better = self.differences > 0 if self.lower_is_better else self.differences < 0
        return int(later_better.sum()), int(first_better.sum()), int((self.differences == 0).sum())

    def wilcoxon_p(self) -> float | None:
        """Two-sided Wilcoxon signed-rank p-value; None below `MIN_SUBJECTS_FOR_TEST` subjects."""
        if self.n < MIN_SUBJECTS_FOR_TEST:
            return None
        if not self.differences.any():
            return 1.0  # identical results: no evidence of any difference (scipy refuses all-zero input)
        return float(stats.wilcoxon(self.differences).pvalue)


def build_comparison(parent_dir: Path, run_dirs: list[Path], out: Path | None = None) -> Path:
    """Write the comparison report of the recipes' run folders (atomically); return its path.

    Args:
        parent_dir: the comparison's folder (``<runs>/<name>``), holding the shared split.json.
        run_dirs: one run folder per recipe, in the order of the columns; differences are each later
            recipe minus the first.
        out: the HTML file to write (or a folder for compare.html); default ``<parent_dir>/compare.html``.

    Raises:
        MedtransError: a folder is missing or not a run folder, or ``out`` would overwrite an input.
    """
    parent_dir = Path(parent_dir)
    if not parent_dir.is_dir():
        raise MedtransError(f"{parent_dir}: comparison folder not found")
    if not run_dirs:
        raise MedtransError(f"{parent_dir}: no recipe run folders to compare")
    for run_dir in run_dirs:
        check_run_folder(Path(run_dir))
    runs = [collect_run(run_dir) for run_dir in run_dirs]
    labels = run_labels(runs)
    parent_split = read_parent_split(parent_dir)
    path = comparison_path(parent_dir, runs, out)
    write_text_atomic(path, render_comparison(parent_dir.name, dict(zip(labels, runs)), parent_split))
    return path


def run_labels(runs: list[RunRecord]) -> list[str]:
    """Column names: each run's recipe, or its folder name when two runs share a recipe."""
    recipes = [str(run.setting("train", "recipe", run.folder.name)) for run in runs]
    if len(set(recipes)) == len(recipes) and not {"input", "real"} & set(recipes):
        return recipes
    return [run.folder.name for run in runs]


def read_parent_split(parent_dir: Path) -> dict | None:
    """The comparison's shared split.json, or None when absent or unreadable."""
    path = parent_dir / "split.json"
    try:
        split = json.loads(path.read_text()) if path.is_file() else None
    except json.JSONDecodeError:
        return None
    return split if isinstance(split, dict) else None


def comparison_path(parent_dir: Path, runs: list[RunRecord], out: Path | None) -> Path:
    """Where the page goes: ``out`` (a file, or a folder to hold compare.html), else ``<parent>/compare.html``.

    Raises:
        MedtransError: ``out`` is one of the files the page reads.
    """
    path = parent_dir / "compare.html" if out is None else Path(out)
    if path.is_dir():
        path = path / "compare.html"
    sources = [parent_dir / "split.json", *(source for run in runs for source in run.sources)]
    if any(path.resolve() == source.resolve() for source in sources):
        raise MedtransError(f"{path}: is an input of the comparison report; choose another output")
    return path


# ---------------------------------------------------------------------------------------------
# Numbers


def contenders(runs: dict[str, RunRecord]) -> list[Contender]:
    """One per recipe, then the lookup baseline (from the first run that evaluated one)."""
    found = [Contender(label, run.evaluation, RECIPE_COLOURS[i % len(RECIPE_COLOURS)])
             for i, (label, run) in enumerate(runs.items())]
    baseline = next((run.baseline_evaluation for run in runs.values() if run.baseline_evaluation), None)
    if baseline is not None:
        found.append(Contender(BASELINE_LABEL, baseline, BASELINE_COLOUR))
    return found


def compared_metrics(runs: dict[str, RunRecord]) -> list[str]:
    """The headline metrics that at least one recipe's evaluation holds."""
    numeric = {c for run in runs.values() if run.evaluation for c in run.evaluation.numeric}
    return [m for m in COMPARED_METRICS if m in numeric]


def evaluated_subjects(runs: dict[str, RunRecord]) -> list[str]:
    """Subjects of any recipe's metrics.csv, in the order they first appear."""
    subjects: dict[str, None] = {}
    for run in runs.values():
        for row in run.evaluation.rows if run.evaluation else []:
            subjects.setdefault(row.get("subject", ""), None)
    return list(subjects)


def metric_units(runs: dict[str, RunRecord]) -> dict[str, str]:
    """Units per metric from the recipes' summary.json files."""
    units: dict[str, str] = {}
    for run in runs.values():
        for source in (run.summary, run.baseline):
            units.update(source.units if source else {})
    return units


def metric_title(metric: str, units: dict[str, str]) -> str:
    """'MAE (HU)', 'SSIM': the metric's display name with its unit (none when dimensionless)."""
    unit = units.get(metric, "")
    name = METRIC_TITLES.get(metric, metric)
    return f"{name} ({unit})" if unit and unit != "1" else name


def lower_is_better(metric: str) -> bool:
    """Errors (MAE and its tissue variants) are better low; PSNR, SSIM and Dice are better high."""
    return metric.startswith("mae")


def paired_difference(first: Contender, later: Contender, subjects: list[str], metric: str) -> PairedDifference:
    """``later - first`` per subject where both values are finite."""
    a, b = first.values(subjects, metric), later.values(subjects, metric)
    kept = np.isfinite(a) & np.isfinite(b)
    kept_subjects = [s for s, k in zip(subjects, kept) if k]
    return PairedDifference(metric, kept_subjects, b[kept] - a[kept], lower_is_better(metric))


def training_seconds(run: RunRecord) -> float | None:
    """Wall time of training from the log's ``seconds`` column, summed over resumed sessions.

    The engine's clock restarts at every resume, so each drop in ``seconds`` ends a session.
    """
    series = (run.training or {}).get("seconds")
    if series is None or series.values.size == 0:
        return None
    values = series.values
    session_ends = np.append(values[1:] < values[:-1], True)
    return float(values[session_ends].sum())


def format_duration(seconds: float | None) -> str:
    """'1 h 05 min', '12 min 04 s', '42.5 s'; 'n/a' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds < 60:
        return f"{format_number(seconds)} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def parameter_counts(run: RunRecord) -> tuple[int, int] | None:
    """(parameters of the translator used at inference, of all networks trained) from the checkpoint.

    The networks are rebuilt on the meta device from the checkpoint's ``network_args``, so no weights are
    allocated. None without a readable checkpoint.
    """
    path = next((run.folder / "checkpoints" / n for n in CHECKPOINT_NAMES
                 if (run.folder / "checkpoints" / n).is_file()), None)
    if path is None:
        return None
    try:
        payload = load_checkpoint(path)
        with torch.device("meta"):
            sizes = {name: sum(p.numel() for p in build_network(args).parameters())
                     for name, args in payload["network_args"].items()}
        return sizes[payload["translator"]], sum(sizes.values())
    except (MedtransError, KeyError, TypeError, AttributeError):
        return None


# ---------------------------------------------------------------------------------------------
# The page


def render_comparison(name: str, runs: dict[str, RunRecord], parent_split: dict | None) -> str:
    """The complete HTML page comparing ``runs`` (label -> run)."""
    units = metric_units(runs)
    subjects = evaluated_subjects(runs)
    metrics = compared_metrics(runs)
    columns = contenders(runs)
    differences = {later.label: [paired_difference(columns[0], later, subjects, m) for m in metrics]
                   for later in columns[1:len(runs)]}
    top = header(name, runs) + verdict_box(columns, differences, units) + fairness_notices(runs, parent_split)
    sections = [
        setup_section(runs, parent_split),
        metrics_section(columns, subjects, metrics, units),
        differences_section(columns[0].label, differences, units),
        plots_section(columns, subjects, metrics, units),
        montages_section(runs),
    ]
    return page(f"{name} - medtrans comparison", top, sections)


def header(name: str, runs: dict[str, RunRecord]) -> str:
    """Title (the recipes compared) and one line of facts."""
    first = next(iter(runs.values()))
    facts = [
        f"comparison {name}",
        f"dataset {first.setting('dataset', 'kind', '?')} ({first.mode})",
        f"medtrans {(first.environment or {}).get('medtrans', 'version unknown')}",
        "run folders " + ", ".join(run.folder.name for run in runs.values()),
    ]
    spans = "".join(f"<span>{esc(f)}</span>" for f in facts)
    return f'<header><h1>{esc(" vs ".join(runs))}</h1><p class="meta">{spans}</p></header>'


def verdict_box(columns: list[Contender], differences: dict[str, list[PairedDifference]],
                units: dict[str, str]) -> str:
    """The verdict lines, in a card at the top of the page."""
    lines = verdict_lines(columns, differences, units)
    items = "".join(f"<p>{esc(line)}</p>" for line in lines)
    return f'<div class="cards"><div class="card"><div class="label">verdict</div>{items}</div></div>'


def verdict_lines(columns: list[Contender], differences: dict[str, list[PairedDifference]],
                  units: dict[str, str]) -> list[str]:
    """One sentence per later recipe on the headline metric, then one on the lookup baseline."""
    first = columns[0].label
    lines = []
    for later, diffs in differences.items():
        by_metric = {d.metric: d for d in diffs if d.n}
        metric = next((m for m in VERDICT_METRICS if m in by_metric), None)
        if metric is None:
            lines.append(f"No test subject has metrics from both {first} and {later} yet.")
            continue
        lines.append(verdict_sentence(first, later, by_metric[metric], units.get(metric, "")))
    baseline = next((c for c in columns if c.label == BASELINE_LABEL), None)
    if baseline is not None and differences:
        lines.append(baseline_sentence(columns, baseline, units))
    return lines or ["Nothing to compare: only one recipe."]


def verdict_sentence(first: str, later: str, diff: PairedDifference, unit: str) -> str:
    """E.g. 'pix2pix has lower MAE on 2 of 2 test subjects (mean difference 35.1 HU); too few ...'."""
    name = METRIC_TITLES.get(diff.metric, diff.metric)
    later_wins, first_wins, _ = diff.wins()
    unit_text = f" {unit}" if unit and unit != "1" else ""
    if diff.mean == 0:
        sentence = f"{first} and {later} have the same mean {name} over {diff.n} test subjects"
    else:
        later_leads = (diff.mean < 0) == diff.lower_is_better
        leader, wins = (later, later_wins) if later_leads else (first, first_wins)
        direction = "lower" if diff.lower_is_better else "higher"
        sentence = (f"{leader} has {direction} {name} on {wins} of {diff.n} test subjects "
                    f"(mean difference {format_number(abs(diff.mean))}{unit_text})")
    p = diff.wilcoxon_p()
    if p is None:
        return sentence + f"; too few subjects for a significance test (n < {MIN_SUBJECTS_FOR_TEST})."
    return sentence + f"; Wilcoxon signed-rank p = {format_number(p)}."


def baseline_sentence(columns: list[Contender], baseline: Contender, units: dict[str, str]) -> str:
    """The lookup baseline's mean headline metric, and each recipe's mean as a ratio of it."""
    metric = next((m for m in VERDICT_METRICS if np.isfinite(column_mean(baseline, m))), None)
    if metric is None:
        return "The lookup baseline has no metric values."
    unit = units.get(metric, "")
    reference = column_mean(baseline, metric)
    ratios = ", ".join(f"{c.label} {format_number(column_mean(c, metric) / reference if reference else math.nan)}"
                       for c in columns if c is not baseline)
    unit_text = f" {unit}" if unit and unit != "1" else ""
    return (f"Lookup baseline mean {METRIC_TITLES.get(metric, metric)} {format_number(reference)}{unit_text}; "
            f"recipe mean / baseline mean: {ratios}.")


def column_mean(column: Contender, metric: str) -> float:
    """Mean of one metric over the subjects of a contender's metrics.csv (NaN when none is defined)."""
    values = column.metrics.values(metric) if column.metrics and metric in column.metrics.columns else np.array([])
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def fairness_notices(runs: dict[str, RunRecord], parent_split: dict | None) -> str:
    """A red box when the recipes did not share one split, cohort and budget; a yellow one for missing pieces."""
    problems = []
    first_label, first = next(iter(runs.items()))
    for label, run in list(runs.items())[1:]:
        if run.split != first.split:
            problems.append(f"{label} and {first_label} were not trained and tested on the same split.json")
        for key in ("steps", "batch_size"):
            if run.setting("train", key) != first.setting("train", key):
                problems.append(f"train.{key} differs: {first_label} {first.setting('train', key)}, "
                                f"{label} {run.setting('train', key)}")
        if run.preprocessed_dir.resolve() != first.preprocessed_dir.resolve():
            problems.append(f"{label} and {first_label} use different preprocessed cohorts")
    if parent_split is not None and first.split is not None and first.split != parent_split:
        problems.append(f"{first_label}'s split.json differs from the comparison's split.json")
    parts = [box("bad", "Not a like-for-like comparison", problems)] if problems else []
    missing = [f"{label}: {line}" for label, run in runs.items() for line in run.missing]
    if missing:
        parts.append(box("missing", "Missing or unreadable in the run folders (the page shows the rest)", missing))
    return "".join(parts)


def setup_section(runs: dict[str, RunRecord], parent_split: dict | None) -> Section:
    """Recipe, budget, training time and network sizes per run; the shared split."""
    labels = list(runs)
    counts = {label: parameter_counts(run) for label, run in runs.items()}
    rows = [
        [text_cell("recipe"), *(text_cell(run.setting("train", "recipe", "?")) for run in runs.values())],
        [text_cell("run folder"), *(text_cell(run.folder.name) for run in runs.values())],
        [text_cell("generator"), *(text_cell(run.setting("model", "generator", "?")) for run in runs.values())],
        [text_cell("training steps (config)"), *(number_cell(as_float(run.setting("train", "steps")))
                                                 for run in runs.values())],
        [text_cell("batch size"), *(number_cell(as_float(run.setting("train", "batch_size")))
                                    for run in runs.values())],
        [text_cell("last logged step"), *(number_cell(last_step(run)) for run in runs.values())],
        [text_cell("training time"), *(duration_cell(training_seconds(run)) for run in runs.values())],
    ]
    if any(counts.values()):
        rows += [
            [text_cell("parameters (generator used for inference)"),
             *(number_cell(None if counts[label] is None else counts[label][0]) for label in labels)],
            [text_cell("parameters (all networks trained)"),
             *(number_cell(None if counts[label] is None else counts[label][1]) for label in labels)],
        ]
    parts = [table(["", *labels], rows, numeric_headers=labels),
             note("Training time is the wall time logged by `medtrans train` (the `seconds` column of "
                  "logs/metrics.csv, summed over resumed sessions); it depends on the device and its load. "
                  "Each recipe's own report is report.html in its run folder.")]
    split = parent_split or next(iter(runs.values())).split
    if split is not None:
        rows = [[text_cell(name), number_cell(len(ids)), text_cell(", ".join(str(i) for i in ids))]
                for name, ids in split.items() if isinstance(ids, list)]
        parts += ["<h3>Split</h3>", table(["set", "subjects", "IDs"], rows, numeric_headers=["subjects"])]
    return Section("setup", "Setup", "".join(parts))


def as_float(value: object) -> float | None:
    """A config value as float, or None when it is not a number."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def last_step(run: RunRecord) -> float | None:
    """The largest step in the training log, or None without one."""
    steps = [series.steps.max() for series in (run.training or {}).values() if series.steps.size]
    return float(max(steps)) if steps else None


def duration_cell(seconds: float | None) -> str:
    """A right-aligned duration; ``data-value`` keeps the seconds."""
    exact = "" if seconds is None else repr(seconds)
    return f'<td class="num" data-value="{esc(exact)}">{esc(format_duration(seconds))}</td>'


def metrics_section(columns: list[Contender], subjects: list[str], metrics: list[str],
                    units: dict[str, str]) -> Section:
    """Per-subject test metrics, each metric's columns side by side, then mean ± std per column."""
    if not subjects or not metrics:
        return Section("metrics", "Test metrics", note("No evaluation yet: run the evaluate stage of each recipe."))
    headers = ["subject", *(f"{c.label} {metric_title(m, units)}" for m in metrics for c in columns)]
    rows = []
    for subject in subjects:
        cells = [f'<td><a href="#{anchor_id("subject", subject)}">{esc(subject)}</a></td>']
        for metric in metrics:
            for column in columns:
                value, exact = column.value(subject, metric)
                cells.append(number_cell(value if exact else None, exact=exact))
        rows.append(cells)
    summary_rows = []
    for metric in metrics:
        cells = [text_cell(metric_title(metric, units))]
        for column in columns:
            values = column.values(subjects, metric)
            values = values[np.isfinite(values)]
            text = (f"{format_number(values.mean())} \u00b1 {format_number(values.std())} (n={values.size})"
                    if values.size else "n/a")
            cells.append(f'<td class="num">{esc(text)}</td>')
        summary_rows.append(cells)
    labels = [c.label for c in columns]
    explanation = "Better is lower for MAE and higher for PSNR, SSIM and bone Dice."
    if BASELINE_LABEL in labels:
        explanation += (f" The {BASELINE_LABEL} maps each MR intensity to the mean HU of that intensity in the "
                        "training pairs, and is evaluated with the same code.")
    parts = [
        note(explanation),
        "<h3>Per subject</h3>", table(headers, rows, numeric_headers=headers[1:]),
        "<h3>Mean \u00b1 std over the test subjects</h3>",
        table(["metric", *labels], summary_rows, numeric_headers=labels),
    ]
    return Section("metrics", "Test metrics", "".join(parts))


def differences_section(first: str, differences: dict[str, list[PairedDifference]], units: dict[str, str]
                        ) -> Section:
    """Per later recipe: the per-subject differences to the first, then their statistics per metric."""
    if not any(d.n for diffs in differences.values() for d in diffs):
        return Section("differences", "Paired differences",
                       note("Needs two recipes evaluated on the same test subjects."))
    parts = []
    for later, diffs in differences.items():
        parts.append(f"<h3>{esc(later)} minus {esc(first)}, per subject</h3>")
        subjects = list(dict.fromkeys(s for d in diffs for s in d.subjects))
        headers = ["subject", *(f"\u0394 {metric_title(d.metric, units)}" for d in diffs)]
        rows = [[text_cell(subject), *(difference_cell(d, subject) for d in diffs)] for subject in subjects]
        parts.append(table(headers, rows, numeric_headers=headers[1:]))
        stat_headers = ["metric", "n", "mean \u0394", "std \u0394 (n\u22121)", f"{later} better",
                        f"{first} better", "ties", "Wilcoxon p"]
        stat_rows = []
        for d in diffs:
            later_wins, first_wins, ties = d.wins()
            p = d.wilcoxon_p()
            p_cell = number_cell(p) if p is not None else text_cell(f"too few subjects (n < {MIN_SUBJECTS_FOR_TEST})")
            stat_rows.append([text_cell(metric_title(d.metric, units)), number_cell(d.n), number_cell(d.mean),
                              number_cell(d.std), number_cell(later_wins), number_cell(first_wins),
                              number_cell(ties), p_cell])
        parts += [f"<h3>{esc(later)} minus {esc(first)}, statistics</h3>",
                  table(stat_headers, stat_rows, numeric_headers=stat_headers[1:-1])]
    parts.append(note("\u0394 = later recipe minus first, per subject with both values defined. "
                      "'Better' counts subjects by the sign of \u0394 (lower MAE, higher PSNR, SSIM and Dice). "
                      f"Wilcoxon: two-sided signed-rank test (scipy), from {MIN_SUBJECTS_FOR_TEST} subjects."))
    return Section("differences", "Paired differences", "".join(parts))


def difference_cell(diff: PairedDifference, subject: str) -> str:
    """One subject's difference, or 'n/a' when either value is undefined."""
    if subject not in diff.subjects:
        return number_cell(None)
    return number_cell(float(diff.differences[diff.subjects.index(subject)]))


def plots_section(columns: list[Contender], subjects: list[str], metrics: list[str],
                  units: dict[str, str]) -> Section:
    """Box plots per metric, one box per recipe (and the baseline), lines joining each subject's values."""
    if not subjects or not metrics:
        return Section("plots", "Box plots", note("No evaluation yet."))
    png = comparison_box_plots(columns, subjects, metrics, units)
    caption = ("Box: median and quartiles; whiskers: 1.5 IQR; points: subjects; grey lines join the values "
               "of one subject.")
    return Section("plots", "Box plots", figure(png, "box plots per metric and recipe", caption))


@figures.styled
def comparison_box_plots(columns: list[Contender], subjects: list[str], metrics: list[str],
                         units: dict[str, str]) -> bytes:
    """One panel per metric: a box and the subjects' points per contender, each subject's points joined."""
    fig, axes = figures.panel_grid(len(metrics), height=2.8)
    positions = np.arange(1, len(columns) + 1)
    for ax, metric in zip(axes, metrics):
        values = np.stack([c.values(subjects, metric) for c in columns])  # (contenders, subjects)
        for subject_values in values.T:
            kept = np.isfinite(subject_values)
            ax.plot(positions[kept], subject_values[kept], color="grey", alpha=0.35, linewidth=0.8, zorder=1)
        for position, column, column_values in zip(positions, columns, values):
            finite = column_values[np.isfinite(column_values)]
            if finite.size:
                ax.boxplot(finite, positions=[position], widths=0.5, showfliers=False,
                           medianprops={"color": figures.FLAGGED_COLOUR}, manage_ticks=False)
                ax.scatter(np.full(finite.size, position), finite, s=14, color=column.colour, zorder=3)
        ax.set_xticks(positions, [c.label.replace(" ", "\n") for c in columns])
        ax.set_xlim(0.4, len(columns) + 0.6)
        better = "lower" if lower_is_better(metric) else "higher"
        ax.set_title(f"{metric_title(metric, units)}, {better} is better")
    return figures.png_bytes(fig)


def montages_section(runs: dict[str, RunRecord]) -> Section:
    """Per test subject: input, each recipe's synthetic CT, real CT and each error map on one colour scale."""
    first = next(iter(runs.values()))
    subjects = list(dict.fromkeys(s for run in runs.values() for s in run.test_subjects))
    if not subjects:
        return Section("subjects", "Test subjects", note("No test subjects: no split.json and no predictions."))
    parts = [note(
        f"Slices through the centre of the body, radiological convention (patient's right on the image's left). "
        f"CT window [{CT_WINDOW_HU[0]:g}, {CT_WINDOW_HU[1]:g}] HU; MR window from its 1st to 99.5th percentile; "
        f"every error map 0 to {ERROR_MAX_HU:g} HU (one colour bar)."
    )]
    for subject in tqdm(subjects, desc="comparison montages", unit="subject", disable=None, leave=False):
        montage = subject_montage(first, subject, predicted_by=runs)
        parts.append(f'<h3 id="{anchor_id("subject", subject)}">{esc(subject)}</h3>')
        if montage.notes:
            parts.append(note("; ".join(montage.notes)))
        if montage.panels:
            parts.append(figure(figures.montage_figure(montage), f"montage of subject {subject}"))
    return Section("subjects", "Test subjects", "".join(parts))

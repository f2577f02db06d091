"""The report's parts, each built from a `RunRecord`: header, summary card, notices and sections.

Only subject IDs from the manifest identify a scan; file paths (which may carry patient names)
and DICOM tags are never shown, and free-text failure reasons have their paths redacted.
"""

from __future__ import annotations

import json

import numpy as np
from tqdm import tqdm

from medtrans.report import figures
from medtrans.report.collect import STAT_KEYS, MetricsTable, RunRecord, Summary, redact_paths
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

# Metrics put on the summary card when present (SynthRAD2023's headline metrics first).
HEADLINE_METRICS = ("mae", "psnr", "ssim", "bone_dice", "cycle_mae", "cycle_psnr", "cycle_ssim", "anatomy_mae")
MAX_HEADLINE = 4
REGISTRATION_NUMBERS = ("metric_before", "metric_after", "dice_before", "dice_after")


def render_report(run: RunRecord) -> str:
    """The complete HTML page of a run."""
    top = header(run) + summary_cards(run) + notices(run)
    sections = [
        results_section(run),
        montages_section(run),
        training_section(run),
        registration_section(run),
        split_section(run),
        setup_section(run),
    ]
    return page(f"{run.name} - medtrans report", top, sections)


def header(run: RunRecord) -> str:
    """Study name, then recipe, dataset kind, training date and versions on one line."""
    kind = run.setting("dataset", "kind", "?")
    facts = [
        f"recipe {run.setting('train', 'recipe', '?')}",
        f"dataset {kind} ({run.mode})",
        f"trained {run.trained_on or 'date unknown'}",
        f"medtrans {(run.environment or {}).get('medtrans', 'version unknown')}",
        f"run folder {run.folder.name}",
    ]
    spans = "".join(f"<span>{esc(f)}</span>" for f in facts)
    return f'<header><h1>{esc(run.name)}</h1><p class="meta">{spans}</p></header>'


def headline_stats(run: RunRecord) -> list[tuple[str, dict[str, float | None]]]:
    """(metric, stats) for the summary card: from summary.json, else computed from metrics.csv."""
    stats = dict(run.summary.stats) if run.summary else {}
    if not stats and run.evaluation is not None:
        for column in run.evaluation.numeric:
            values = run.evaluation.values(column)
            values = values[np.isfinite(values)]
            stats[column] = {"mean": float(values.mean()) if values.size else None,
                             "std": float(values.std()) if values.size else None, "n": float(values.size)}
    preferred = [name for name in HEADLINE_METRICS if name in stats]
    names = preferred or list(stats)
    return [(name, stats[name]) for name in names[:MAX_HEADLINE]]


def card(label: str, value: str, detail: str = "", footnote: str = "") -> str:
    """One summary card: a small label, a large value, a muted detail and a muted line below (texts, escaped here)."""
    detail_html = f" <small>{esc(detail)}</small>" if detail else ""
    # Inline size: the footnote is secondary to the value (html.CSS has no card footnote rule).
    footnote_html = f'<div class="note" style="font-size:12px">{esc(footnote)}</div>' if footnote else ""
    return (f'<div class="card"><div class="label">{esc(label)}</div>'
            f'<div class="value">{esc(value)}{detail_html}</div>{footnote_html}</div>')


def with_unit(number: float | None, unit: str) -> str:
    """A formatted number followed by its unit (none for dimensionless '1')."""
    return format_number(number) + (f" {unit}" if unit and unit != "1" else "")


def baseline_ratio(model_mean: float | None, baseline_mean: float | None) -> float | None:
    """Model mean / lookup baseline mean (below 1: the model has the smaller value); None when undefined."""
    if model_mean is None or baseline_mean is None or not np.isfinite(baseline_mean) or baseline_mean == 0:
        return None
    return model_mean / baseline_mean


def baseline_footnote(run: RunRecord, name: str, model_mean: float | None, unit: str) -> str:
    """'lookup baseline 77.2 HU; ratio 0.31' for a headline metric, or '' without a baseline value."""
    stats = run.baseline.stats.get(name) if run.baseline else None
    if not stats or stats.get("mean") is None:
        return ""
    ratio = baseline_ratio(model_mean, stats["mean"])
    return f"lookup baseline {with_unit(stats['mean'], unit)}; ratio {format_number(ratio)}"


def summary_cards(run: RunRecord) -> str:
    """Cards with the headline metrics (mean +/- std, and the lookup baseline), test subjects and flagged subjects."""
    units = run.summary.units if run.summary else {}
    cards = []
    for name, stats in headline_stats(run):
        unit = units.get(name, "")
        detail = "\u00b1 " + with_unit(stats.get("std"), unit)
        footnote = baseline_footnote(run, name, stats.get("mean"), unit)
        cards.append(card(name, format_number(stats.get("mean")), detail, footnote))
    if not cards:
        cards.append(card("results", "", "not evaluated yet"))
    n_evaluated = len(run.evaluation.rows) if run.evaluation else 0
    cards.append(card("test subjects", str(n_evaluated), f"evaluated of {len(run.test_subjects)}"))
    cards.append(card("flagged / failed", str(len(flagged_records(run))), f"of {len(run.records)} preprocessed"))
    return f'<div class="cards">{"".join(cards)}</div>'


def flagged_records(run: RunRecord) -> list[dict]:
    """Manifest records whose status is not 'ok', in manifest order."""
    return [r for r in run.records.values() if r.get("status") != "ok"]


def notices(run: RunRecord) -> str:
    """Prominent boxes: flagged or failed subjects, then missing or unreadable pieces of the run."""
    parts = []
    flagged = flagged_records(run)
    if flagged:
        items = [f"{r['subject']} ({r.get('status', '?')}): {redact_paths(str(r.get('reason') or 'no reason given'))}"
                 for r in flagged]
        parts.append(box("bad", f"{len(flagged)} subject(s) flagged or failed in preprocessing "
                                "(left out of training)", items))
    if run.missing:
        parts.append(box("missing", "Missing or unreadable in the run folder (the report shows the rest)",
                         run.missing))
    return "".join(parts)


def results_section(run: RunRecord) -> Section:
    """Per-subject metrics table, summary statistics and box plots per metric."""
    parts = []
    if run.evaluation is None:
        parts.append(note("No evaluation yet: run `medtrans evaluate` to fill this section."))
    else:
        parts += ["<h3>Per subject</h3>", per_subject_table(run.evaluation)]
    if run.summary is not None and run.summary.stats:
        parts += ["<h3>Summary</h3>", summary_table(run.summary)]
    if run.summary is not None and run.baseline is not None:
        parts += ['<h3 id="baseline">Lookup baseline</h3>', baseline_table(run.summary, run.baseline)]
    if run.evaluation is not None and run.evaluation.numeric:
        units = run.summary.units if run.summary else {}
        parts.append(figure(figures.box_plots(run.evaluation, units), "box plots per metric",
                            "Box: median and quartiles; whiskers: 1.5 IQR; points: subjects."))
    return Section("results", "Results", "".join(parts))


def per_subject_table(metrics: MetricsTable) -> str:
    """evaluation/metrics.csv as a table: subjects link to their montage, numbers keep their exact text."""
    rows = []
    for row in metrics.rows:
        cells = []
        for column in metrics.columns:
            cell = row.get(column, "")
            if column == "subject":
                cells.append(f'<td><a href="#{anchor_id("subject", cell)}">{esc(cell)}</a></td>')
            elif column in metrics.numeric:
                cells.append(number_cell(float(cell) if cell else None, exact=cell))
            else:
                cells.append(text_cell(cell))
        rows.append(cells)
    return table(metrics.columns, rows, numeric_headers=metrics.numeric)


def summary_table(summary: Summary) -> str:
    """summary.json's statistics (one row per metric) and its other facts."""
    headers = ["metric", *STAT_KEYS, "unit"]
    rows = [[text_cell(name), *(number_cell(stats.get(k)) for k in STAT_KEYS), text_cell(summary.units.get(name, ""))]
            for name, stats in summary.stats.items()]
    facts = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in summary.facts.items())
    return table(headers, rows, numeric_headers=STAT_KEYS) + (f'<ul class="note">{facts}</ul>' if facts else "")


def baseline_table(summary: Summary, baseline: Summary) -> str:
    """The model's mean next to the lookup baseline's for every metric both have, and their ratio."""
    headers = ["metric", "model mean", "baseline mean", "ratio", "baseline std", "baseline n", "unit"]
    rows = []
    for name, stats in summary.stats.items():
        reference = baseline.stats.get(name)
        if reference is None:
            continue
        rows.append([text_cell(name), number_cell(stats.get("mean")), number_cell(reference.get("mean")),
                     number_cell(baseline_ratio(stats.get("mean"), reference.get("mean"))),
                     number_cell(reference.get("std")), number_cell(reference.get("n")),
                     text_cell(summary.units.get(name, ""))])
    explanation = note("The lookup baseline maps each MR intensity to the mean HU of that intensity in the training "
                       "pairs, and is evaluated with the same code on the same test subjects; ratio = model mean / "
                       "baseline mean (below 1: the model has the smaller value, better for MAE).")
    return explanation + table(headers, rows, numeric_headers=headers[1:-1])


def montages_section(run: RunRecord) -> Section:
    """One montage per test subject, with notes on what could not be shown."""
    subjects = run.test_subjects
    if not subjects:
        return Section("subjects", "Test subjects", note("No test subjects: no split.json and no predictions."))
    parts = [note(
        f"Slices through the centre of the body, radiological convention (patient's right on the image's left). "
        f"CT window [{CT_WINDOW_HU[0]:g}, {CT_WINDOW_HU[1]:g}] HU; MR window from its 1st to 99.5th percentile; "
        f"error map 0 to {ERROR_MAX_HU:g} HU."
    )]
    for subject in tqdm(subjects, desc="report montages", unit="subject", disable=None, leave=False):
        montage = subject_montage(run, subject)
        parts.append(f'<h3 id="{anchor_id("subject", subject)}">{esc(subject)}</h3>')
        if montage.notes:
            parts.append(note("; ".join(montage.notes)))
        if montage.panels:
            parts.append(figure(figures.montage_figure(montage), f"montage of subject {subject}"))
    return Section("subjects", "Test subjects", "".join(parts))


def training_section(run: RunRecord) -> Section:
    """Loss and learning-rate curves (smoothed), then validation curves."""
    series = run.training
    if not series:
        return Section("training", "Training", note("No training log yet (logs/metrics.csv)."))
    losses = [c for c in series if c.startswith("loss")] + [c for c in series if c == "lr"]
    validation = [c for c in series if c.startswith("val_")]
    steps = np.concatenate([s.steps for s in series.values()])
    parts = [note(f"Logged steps {format_number(steps.min())} to {format_number(steps.max())}.")]
    if losses:
        parts.append(figure(figures.training_figure(series, losses), "training losses",
                            "Faint: logged values; line: exponential moving average."))
    if validation:
        parts.append(figure(figures.validation_figure(series, validation), "validation metrics",
                            "Validation metrics on the validation subjects."))
    else:
        parts.append(note("No validation rows in the training log."))
    return Section("training", "Training", "".join(parts))


def registration_section(run: RunRecord) -> Section:
    """Registration quality per MR/CT pair: a table and a before/after Dice plot."""
    pairs = [r for r in run.records.values() if r.get("domain") == "paired"]
    if not pairs:
        text = "Unpaired study: no registration." if run.mode == "unpaired" else "No preprocessing manifest yet."
        return Section("registration", "Registration", note(text))
    numbers_headers = ["metric before", "metric after", "Dice before", "Dice after"]
    headers = ["subject", "status", "method", *numbers_headers, "reason"]
    rows, classes, with_dice = [], [], []
    for record in pairs:
        reg = record.get("registration") or {}
        numbers = [as_number(reg.get(key)) for key in REGISTRATION_NUMBERS]
        rows.append([
            text_cell(record["subject"]), text_cell(record.get("status", "?")), text_cell(reg.get("method", "")),
            *(number_cell(n) for n in numbers), text_cell(redact_paths(str(record.get("reason") or ""))),
        ])
        classes.append("" if record.get("status") == "ok" else "flagged")
        if numbers[2] is not None and numbers[3] is not None:
            with_dice.append((record, numbers[2], numbers[3]))
    parts = [table(headers, rows, classes, numeric_headers=numbers_headers)]
    if with_dice:
        before = np.array([b for _, b, _ in with_dice])
        after = np.array([a for _, _, a in with_dice])
        threshold = as_number(run.setting("preprocess", "min_body_dice"))
        png = figures.dice_figure(before, after, [r.get("status") != "ok" for r, _, _ in with_dice], threshold)
        limit = f"; dashed: the preprocess.min_body_dice limit ({threshold:g})" if threshold is not None else ""
        parts.append(figure(png, "body-mask Dice before and after registration",
                            f"Dice of the MR and CT body masks; red: flagged or failed pairs{limit}."))
    return Section("registration", "Registration", "".join(parts))


def as_number(value: object) -> float | None:
    """A JSON value as float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return float(value)


def split_section(run: RunRecord) -> Section:
    """Subjects per set (train / val / test) and the manifest's status counts."""
    parts = []
    if run.split is None:
        parts.append(note("No split.json yet."))
    else:
        rows = [[text_cell(name), number_cell(len(ids)), text_cell(", ".join(str(i) for i in ids))]
                for name, ids in run.split.items() if isinstance(ids, list)]
        parts.append(table(["set", "subjects", "IDs"], rows, numeric_headers=["subjects"]))
    if run.records:
        counts: dict[str, int] = {}
        for record in run.records.values():
            key = f"{record.get('domain', '?')} {record.get('status', '?')}"
            counts[key] = counts.get(key, 0) + 1
        summary = ", ".join(f"{n} {key}" for key, n in sorted(counts.items()))
        parts.append(note(f"Preprocessing manifest: {len(run.records)} subjects ({summary})."))
    return Section("split", "Dataset split", "".join(parts))


def setup_section(run: RunRecord) -> Section:
    """The environment record (versions, device, git commit) and the resolved config as written."""
    parts = ["<h3>Environment</h3>"]
    if run.environment is None:
        parts.append(note("No environment.json."))
    else:
        rows = [[text_cell(k), text_cell(v if isinstance(v, str) else json.dumps(v))]
                for k, v in run.environment.items()]
        parts.append(table(["item", "value"], rows))
    parts.append("<h3>Resolved config</h3>")
    parts.append(f"<pre>{esc(run.config_text)}</pre>" if run.config_text is not None else note("No config.yaml."))
    return Section("setup", "Config and environment", "".join(parts))

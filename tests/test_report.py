"""Tests for `medtrans report`: a self-contained, reproducible, de-identified HTML report of a run folder."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from medtrans.cli import main
from medtrans.config import config_from_dict, dump_config
from medtrans.errors import MedtransError
from medtrans.io import Volume, write_dicom_series, write_volume
from medtrans.report import build_report
from medtrans.report.collect import collect_run, parse_summary, redact_paths
from medtrans.report.html import format_number
from medtrans.report.montage import CT_WINDOW_HU, View, body_view, lps_ordered, plane_slices, subject_montage

PNG_URI = "data:image/png;base64,"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHAPE = (30, 26, 14)
SPACING = (1.2, 1.2, 2.5)
PAIRED_SUBJECTS = ("s01", "s02", "s03", "s04")
TEST_SUBJECTS = ("s03", "s04")
PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "PID-778899"
METRIC_COLUMNS = ("mae", "psnr", "ssim", "mae_air", "mae_soft", "mae_bone", "bone_dice")


# ---------------------------------------------------------------------------------------------
# A fake run folder (tiny volumes), laid out as docs/design.md describes


def body_ct(seed: int) -> np.ndarray:
    """A CT in HU (X, Y, Z): air, an off-centre soft-tissue ellipsoid with a bone ring."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    radius = (x / 0.7) ** 2 + ((y - 0.1) / 0.6) ** 2 + (z / 0.8) ** 2
    ct = np.full(SHAPE, -1000.0, np.float32)
    ct[radius < 1] = 40.0
    ct[(radius > 0.75) & (radius < 1)] = 700.0
    return ct + rng.normal(0, 5, SHAPE).astype(np.float32)


def ct_volume(array: np.ndarray) -> Volume:
    """A volume on the fake scanner grid (RAS-ordered axes, like a NIfTI from dcm2niix)."""
    return Volume(array, SPACING, (20.0, 15.0, -10.0), np.diag([-1.0, -1.0, 1.0]))


def write_config(run: Path, recipe: str, paired: bool, preprocessed_dir: Path | None = None) -> None:
    data = ({"paired": "/cohort/paired"} if paired
            else {"domain_a": "/cohort/healthy", "domain_b": "/cohort/lesion", "modality_b": "mr"})
    values = {"name": run.name, "data": data, "train": {"recipe": recipe, "steps": 1000, "batch_size": 4},
              "output_root": str(run.parent)}
    if preprocessed_dir is not None:
        values["preprocessed_dir"] = str(preprocessed_dir)
    cfg = config_from_dict(values)
    (run / "config.yaml").write_text(dump_config(cfg))
    env = {"python": "3.11.9", "medtrans": "0.1.0", "torch": "2.13.0", "device": "cpu", "git_commit": "abc123"}
    (run / "environment.json").write_text(json.dumps(env, indent=2))


def write_training_log(run: Path, losses: list[str], val: list[str], seconds_per_step: float = 0.05) -> None:
    rows = []
    for step in range(10, 1010, 10):
        rows.append({"step": step, **{name: 1.0 / (1 + step / 300) + 0.05 * np.sin(step) for name in losses},
                     "lr": 2e-4, "seconds": round(step * seconds_per_step, 3)})
        if step % 250 == 0:
            rows.append({"step": step, **{name: 100.0 - step / 20 for name in val}})
    columns = ["step", *losses, "lr", "seconds", *val]
    (run / "logs").mkdir(parents=True)
    with (run / "logs" / "metrics.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_evaluation(run: Path, subjects: tuple[str, ...], seed: int = 7,
                     folder: str = "evaluation") -> dict[str, dict[str, str]]:
    """metrics.csv (values written with repr, as the evaluator does) and summary.json; returns the cells."""
    rng = np.random.default_rng(seed)
    cells = {s: {m: repr(float(rng.uniform(0.1, 120.0))) for m in METRIC_COLUMNS} for s in subjects}
    cells[subjects[0]]["bone_dice"] = "NaN"
    out = run / folder
    out.mkdir(parents=True)
    with (out / "metrics.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject", *METRIC_COLUMNS])
        writer.writerows([[s, *(cells[s][m] for m in METRIC_COLUMNS)] for s in subjects])
    stats = {}
    for metric in METRIC_COLUMNS:
        values = np.array([float(cells[s][metric]) for s in subjects])
        values = values[np.isfinite(values)]
        stats[metric] = {"mean": float(values.mean()), "std": float(values.std()), "median": float(np.median(values)),
                         "q1": float(np.percentile(values, 25)), "q3": float(np.percentile(values, 75)),
                         "n": int(values.size)}
    summary = {"n": len(subjects), "mask": "body mask of the real CT", "units": {"mae": "HU", "psnr": "dB"},
               "metrics": stats}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return cells


def paired_record(subject: str, inputs: dict[str, str], status: str = "ok", reason: str | None = None) -> dict:
    return {"subject": subject, "domain": "paired", "status": status, "reason": reason, "inputs": inputs,
            "images": {"mr": f"{subject}/mr.nii.gz", "ct": f"{subject}/ct.nii.gz"},
            "mask": f"{subject}/body_mask.nii.gz",
            "registration": {"method": "rigid", "metric_before": -0.31, "metric_after": -0.52,
                             "dice_before": 0.81, "dice_after": 0.97 if status == "ok" else 0.62},
            "mr_on_ct": f"{subject}/mr_on_ct.nii.gz"}


def write_paired_cohort(root: Path, preprocessed: Path, dicom_subject: str | None = None) -> dict[str, Volume]:
    """Input scans under ``root/inputs``, MR on the CT grid and the manifest in ``preprocessed``; returns the CTs.

    Four pairs and one flagged pair. With ``dicom_subject``, that subject's real CT is a DICOM series
    carrying a patient name and ID, stored under a folder named after the patient.
    """
    records, cts = [], {}
    for index, subject in enumerate(PAIRED_SUBJECTS):
        ct = cts[subject] = ct_volume(body_ct(index))
        folder = root / "inputs" / subject
        write_volume(ct, folder / "ct.nii.gz")
        ct_path = folder / "ct.nii.gz"
        if subject == dicom_subject:
            ct_path = write_dicom_series(ct, root / "inputs" / "DOE_JANE" / "ct", modality="CT",
                                         identity={"PatientName": PATIENT_NAME, "PatientID": PATIENT_ID})
        mr = ct.with_array(np.where(ct.array > -500, 300.0 + ct.array / 10, 5.0).astype(np.float32))
        write_volume(mr, preprocessed / subject / "mr_on_ct.nii.gz")
        records.append(paired_record(subject, {"mr": str(folder / "mr.nii.gz"), "ct": str(ct_path)}))
    bad_reason = f"registration Dice 0.62 < 0.90 for {root}/inputs/DOE_JANE/mr.nii.gz"
    records.append(paired_record("s05", {"mr": "/x/mr.nii.gz", "ct": "/x/ct.nii.gz"}, "flagged", bad_reason))
    (preprocessed / "manifest.json").write_text(json.dumps({"version": 1, "mode": "paired", "subjects": records}))
    return cts


def write_predictions(run: Path, cts: dict[str, Volume], offset_hu: float) -> None:
    """predictions/<subject>.nii.gz for the test subjects: the real CT plus ``offset_hu``."""
    for subject in TEST_SUBJECTS:
        write_volume(cts[subject].with_array(cts[subject].array + offset_hu), run / "predictions" / f"{subject}.nii.gz")


def write_split(run: Path) -> None:
    (run / "split.json").write_text(json.dumps({"train": ["s01"], "val": ["s02"], "test": list(TEST_SUBJECTS)}))


def make_paired_run(root: Path, dicom_subject: str | None = None) -> Path:
    """A finished pix2pix run with 4 pairs (2 test subjects) and one flagged pair (see `write_paired_cohort`)."""
    run = root / "runs" / "demo"
    run.mkdir(parents=True)
    write_config(run, "pix2pix", paired=True)
    cts = write_paired_cohort(root, run / "preprocessed", dicom_subject)
    write_predictions(run, cts, 30.0)
    write_split(run)
    write_training_log(run, ["loss_d", "loss_g_gan", "loss_g_l1"], ["val_mae", "val_psnr", "val_ssim"])
    write_evaluation(run, TEST_SUBJECTS)
    return run


def make_unpaired_run(root: Path) -> Path:
    """A CycleGAN run: MR domains, one test subject of domain a, evaluation with extra summary keys."""
    run = root / "runs" / "cyc"
    run.mkdir(parents=True)
    write_config(run, "cyclegan", paired=False)
    records = []
    for index, (subject, domain) in enumerate((("a1", "a"), ("a2", "a"), ("b1", "b"))):
        mr = ct_volume(np.clip(body_ct(index) / 4 + 300, 0, None).astype(np.float32))
        write_volume(mr, root / "inputs" / f"{subject}.nii.gz")
        records.append({"subject": subject, "domain": domain, "status": "ok", "reason": None,
                        "inputs": {"image": str(root / "inputs" / f"{subject}.nii.gz")}})
        if subject == "a2":
            write_volume(mr.with_array(mr.array * 1.1), run / "predictions" / "a2.nii.gz")
    (run / "preprocessed").mkdir()
    (run / "preprocessed" / "manifest.json").write_text(json.dumps({"version": 1, "mode": "unpaired",
                                                                    "subjects": records}))
    (run / "split.json").write_text(json.dumps({"train": ["a1", "b1"], "val": [], "test": ["a2"]}))
    cyclegan_losses = ["loss_g_ab", "loss_g_ba", "loss_cycle_a", "loss_cycle_b", "loss_idt_a", "loss_idt_b",
                       "loss_d_a", "loss_d_b"]
    write_training_log(run, cyclegan_losses, ["val_cycle_mae"])
    (run / "evaluation").mkdir()
    (run / "evaluation" / "metrics.csv").write_text(
        "subject,cycle_mae,cycle_psnr,judged_target\na2,0.0625,31.5,b\n")
    summary = {"cycle_mae": {"mean": 0.0625, "std": 0.0, "median": 0.0625, "q1": 0.0625, "q3": 0.0625, "n": 1},
               "hist_wasserstein": 0.125, "judged_target": {"fraction": 0.75}}
    (run / "evaluation" / "summary.json").write_text(json.dumps(summary))
    return run


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_paired_run(tmp_path_factory.mktemp("paired"))


@pytest.fixture(scope="module")
def paired_report(paired_run: Path) -> str:
    return build_report(paired_run).read_text()


# ---------------------------------------------------------------------------------------------
# Reading the page back


class TableReader(HTMLParser):
    """Collects every table as rows of (text, data-value) cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, str | None]]]] = []
        self.cell: list[str] | None = None
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell, self.value = [], dict(attrs).get("data-value")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(("".join(self.cell).strip(), self.value))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def tables_of(page: str) -> list[list[list[tuple[str, str | None]]]]:
    reader = TableReader()
    reader.feed(page)
    return reader.tables


def embedded_pngs(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


# ---------------------------------------------------------------------------------------------
# The report of a finished paired run


def test_paired_report_embeds_every_figure_as_a_valid_png(paired_report: str) -> None:
    # box plots, 2 montages, training losses, validation curves, registration Dice
    assert paired_report.count(PNG_URI) == 6
    pngs = embedded_pngs(paired_report)
    assert len(pngs) == 6
    for png in pngs:
        assert png.startswith(PNG_SIGNATURE)
        assert b"matplotlib" not in png  # no Software metadata
    montage = matplotlib.image.imread(io.BytesIO(pngs[1]), format="png")
    assert montage.ndim == 3 and montage.shape[0] > 300 and montage.shape[1] > 600
    assert montage[..., :3].std() > 0.1  # real image content, not a blank canvas


def test_paired_montage_shows_input_synthetic_real_and_their_difference(paired_run: Path) -> None:
    montage = subject_montage(collect_run(paired_run), "s03")
    assert montage.notes == []
    assert [p.title for p in montage.panels] == ["input (MR)", "synthetic (CT)", "real (CT)"]
    assert montage.panels[1].window == montage.panels[2].window == CT_WINDOW_HU
    for plane in montage.error.slices:  # the fake prediction is the real CT + 30 HU
        np.testing.assert_allclose(plane, 30.0, atol=1e-3)
    assert montage.aspects == pytest.approx((1.0, 2.5 / 1.2, 2.5 / 1.2))


def test_paired_report_is_self_contained(paired_report: str) -> None:
    sources = re.findall(r'src="([^"]*)"', paired_report)
    assert len(sources) == 6 and all(s.startswith(PNG_URI) for s in sources)
    assert all(link.startswith("#") for link in re.findall(r'href="([^"]*)"', paired_report))  # in-page only
    assert "<script" not in paired_report and "<link" not in paired_report
    assert "@import" not in paired_report and "url(" not in paired_report


def test_per_subject_table_holds_the_numbers_of_metrics_csv(paired_run: Path, paired_report: str) -> None:
    with (paired_run / "evaluation" / "metrics.csv").open() as fh:
        expected = list(csv.DictReader(fh))
    per_subject = tables_of(paired_report)[0]
    assert [text for text, _ in per_subject[0]] == ["subject", *METRIC_COLUMNS]
    assert len(per_subject) - 1 == len(expected)
    for row, written in zip(per_subject[1:], expected):
        assert row[0][0] == written["subject"]
        for (text, exact), metric in zip(row[1:], METRIC_COLUMNS):
            if written[metric] == "NaN":
                assert text == "n/a"
                continue
            assert float(exact) == float(written[metric])
            assert float(text) == pytest.approx(float(written[metric]), rel=1e-3, abs=1e-4)


def test_summary_card_and_table_show_summary_json(paired_run: Path, paired_report: str) -> None:
    summary = json.loads((paired_run / "evaluation" / "summary.json").read_text())["metrics"]
    mae = summary["mae"]
    card = re.search(r'<div class="label">mae</div><div class="value">([^<]+) <small>\u00b1 ([^ <]+) HU</small>',
                     paired_report)
    assert card is not None
    assert float(card.group(1)) == pytest.approx(mae["mean"], rel=1e-3)
    assert float(card.group(2)) == pytest.approx(mae["std"], rel=1e-3)
    summary_rows = {row[0][0]: row for row in tables_of(paired_report)[1][1:]}
    assert set(summary_rows) == set(METRIC_COLUMNS)
    assert float(summary_rows["psnr"][1][1]) == summary["psnr"]["mean"]
    assert float(summary_rows["psnr"][6][1]) == summary["psnr"]["n"]


def test_lookup_baseline_is_shown_next_to_the_model_when_evaluated(tmp_path: Path, paired_report: str) -> None:
    assert "lookup baseline" not in paired_report.lower()
    run = make_paired_run(tmp_path)
    baseline = write_evaluation(run, TEST_SUBJECTS, seed=3, folder="evaluation/baseline")
    page = build_report(run).read_text()
    model = json.loads((run / "evaluation" / "summary.json").read_text())["metrics"]
    baseline_mae = np.mean([float(baseline[s]["mae"]) for s in TEST_SUBJECTS])
    card = re.search(r'<div class="label">mae</div>.*?<div class="note"[^>]*>([^<]+)</div>', page)
    ratio = format_number(model["mae"]["mean"] / baseline_mae)
    assert card.group(1) == f"lookup baseline {format_number(baseline_mae)} HU; ratio {ratio}"
    rows = {row[0][0]: row for row in next(t for t in tables_of(page) if t[0][2][0] == "baseline mean")[1:]}
    assert set(rows) == set(METRIC_COLUMNS)
    assert float(rows["mae"][1][1]) == model["mae"]["mean"]
    assert float(rows["mae"][2][1]) == pytest.approx(baseline_mae, rel=1e-12)
    assert float(rows["mae"][3][1]) == pytest.approx(model["mae"]["mean"] / baseline_mae, rel=1e-12)


def test_header_dates_training_from_the_log_file(paired_run: Path, paired_report: str) -> None:
    import datetime

    stamp = datetime.datetime.fromtimestamp((paired_run / "logs" / "metrics.csv").stat().st_mtime,
                                            tz=datetime.timezone.utc)
    assert f"trained {stamp:%Y-%m-%d %H:%M} UTC" in paired_report
    assert "recipe pix2pix" in paired_report and "dataset 2d (paired)" in paired_report


def test_flagged_subjects_and_registration_are_listed(paired_report: str) -> None:
    flagged_box = re.search(r'<div class="box bad">(.*?)</div>', paired_report, re.S)
    assert flagged_box is not None and "s05 (flagged)" in flagged_box.group(1)
    registration = next(t for t in tables_of(paired_report) if t[0][0][0] == "subject" and t[0][1][0] == "status")
    by_subject = {row[0][0]: row for row in registration[1:]}
    assert set(by_subject) == {*PAIRED_SUBJECTS, "s05"}
    assert float(by_subject["s05"][6][1]) == 0.62
    assert '<tr class="flagged"><td>s05</td>' in paired_report


def test_rebuilding_gives_the_same_bytes(paired_run: Path, paired_report: str, tmp_path: Path) -> None:
    first = (paired_run / "report.html").read_bytes()
    assert build_report(paired_run, tmp_path / "again.html").read_bytes() == first


def test_dicom_identity_and_input_paths_never_leak(tmp_path: Path) -> None:
    run = make_paired_run(tmp_path, dicom_subject="s03")
    page = build_report(run).read_text()
    assert page.count(PNG_URI) == 6  # the DICOM CT was read and shown
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page).lower()  # base64 spells anything
    for secret in ("DOE", "JANE", PATIENT_ID, str(tmp_path / "inputs")):
        assert secret.lower() not in text
        assert all(secret.encode() not in png for png in embedded_pngs(page))
    assert "registration Dice 0.62 &lt; 0.90 for &lt;path&gt;" in page


def test_missing_evaluation_and_predictions_are_reported_not_fatal(tmp_path: Path) -> None:
    run = make_paired_run(tmp_path)
    shutil.rmtree(run / "evaluation")
    shutil.rmtree(run / "predictions")
    page = build_report(run).read_text()
    assert "No evaluation yet" in page
    missing = re.search(r'<div class="box missing">(.*?)</div>', page, re.S).group(1)
    assert "evaluation/metrics.csv" in missing and "predictions/" in missing
    assert "no prediction yet" in page
    # 2 montages (input and real only), training losses, validation curves, registration Dice
    assert page.count(PNG_URI) == 5
    assert "not evaluated yet" in page


def test_almost_empty_run_folder_still_gives_a_report(tmp_path: Path) -> None:
    run = tmp_path / "early"
    run.mkdir()
    write_config(run, "pix2pix", paired=True)
    page = build_report(run).read_text()
    assert PNG_URI not in page
    for piece in ("split.json", "preprocessed/manifest.json", "logs/metrics.csv", "evaluation/metrics.csv"):
        assert piece in page


def test_unpaired_report_renders_whatever_numbers_it_finds(tmp_path: Path) -> None:
    run = make_unpaired_run(tmp_path)
    page = build_report(run).read_text()
    # box plots, one montage (input and synthetic, no error map), training losses, validation curve
    assert page.count(PNG_URI) == 4
    per_subject = tables_of(page)[0]
    assert [text for text, _ in per_subject[0]] == ["subject", "cycle_mae", "cycle_psnr", "judged_target"]
    assert per_subject[1][1][1] == "0.0625" and per_subject[1][3] == ("b", None)
    assert "hist_wasserstein: 0.125" in page and "judged_target.fraction: 0.75" in page
    assert "Unpaired study: no registration." in page
    montage = matplotlib.image.imread(io.BytesIO(embedded_pngs(page)[1]), format="png")
    assert montage.shape[1] < montage.shape[0] * 1.6  # two columns, not four
    panels = subject_montage(collect_run(run), "a2").panels
    assert [p.title for p in panels] == ["input (MR)", "synthetic (MR)"]
    assert all(p.window != CT_WINDOW_HU for p in panels)  # MR: percentile window, not the CT one


# ---------------------------------------------------------------------------------------------
# Pieces


def test_montage_slices_follow_the_radiological_convention() -> None:
    lps = np.zeros((9, 7, 5), np.float32)
    lps[0, 0, 4] = 1.0  # patient's right, anterior, superior corner
    as_lps = Volume(lps, (1.0, 2.0, 3.0), (0, 0, 0), np.eye(3))
    as_ras = Volume(lps[::-1, ::-1].copy(), (1.0, 2.0, 3.0), (8.0, 12.0, 0.0), np.diag([-1.0, -1.0, 1.0]))
    for vol in (as_lps, as_ras):
        ordered = lps_ordered(vol)
        assert ordered.spacing_mm == (1.0, 2.0, 3.0)
        np.testing.assert_array_equal(ordered.array, lps)
    axial, coronal, sagittal = plane_slices(lps, View((0, 0, 4), (slice(None),) * 3))
    assert axial[0, 0] == 1.0  # anterior at the top, patient's right on the left
    assert coronal[0, 0] == 1.0  # superior at the top, right on the left
    assert sagittal[0, 0] == 1.0  # superior at the top, anterior on the left
    assert axial.shape == (7, 9) and coronal.shape == (5, 9) and sagittal.shape == (5, 7)


def test_body_view_centres_on_the_body_and_crops_with_a_margin() -> None:
    array = np.full((40, 30, 20), -1000.0, np.float32)
    array[20:30, 5:15, 8:12] = 40.0
    view = body_view(array, (2.0, 2.0, 5.0))
    assert view.centre == (24, 10, 10)  # rounded centre of mass
    assert view.crop == (slice(15, 35), slice(0, 20), slice(6, 14))  # 10 mm margin, clipped at the border


def test_summary_is_read_generically() -> None:
    summary = parse_summary({"n": 3, "units": {"mae": "HU"}, "metrics": {"mae": {"mean": 5, "std": 1, "n": 3}},
                             "domain_b": {"fid": {"mean": 2.5, "std": 0.5}, "note": "x"}})
    assert set(summary.stats) == {"mae", "domain_b.fid"}
    assert summary.stats["mae"]["mean"] == 5.0 and summary.stats["domain_b.fid"]["median"] is None
    assert summary.units == {"mae": "HU"} and summary.facts == {"n": "3", "domain_b.note": "x"}


def test_redact_paths_hides_absolute_paths_only() -> None:
    assert redact_paths("cannot read /data/Doe_John/ct: folder not found") == "cannot read <path>: folder not found"
    assert redact_paths(r"bad C:\scans\Doe\mr.nii, Dice 0.6/0.9") == "bad <path>, Dice 0.6/0.9"


def test_collect_notes_invalid_json_instead_of_failing(tmp_path: Path) -> None:
    run = tmp_path / "r"
    (run / "evaluation").mkdir(parents=True)
    (run / "split.json").write_text("{not json")
    record = collect_run(run)
    assert record.split is None
    assert any(line.startswith("split.json: not valid JSON") for line in record.missing)


# ---------------------------------------------------------------------------------------------
# Command line


def test_cli_writes_report_and_prints_its_path(paired_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "elsewhere" / "study.html"
    assert main(["report", str(paired_run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_cli_refuses_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a medtrans run folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run folder not found" in capsys.readouterr().err


def test_report_never_overwrites_its_inputs(paired_run: Path) -> None:
    with pytest.raises(MedtransError, match="input of the report"):
        build_report(paired_run, paired_run / "evaluation" / "metrics.csv")

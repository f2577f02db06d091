"""Tests for the pix2pix-versus-CycleGAN comparison report (medtrans.report.compare)."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from fakes import write_checkpoint
from medtrans.errors import MedtransError
from medtrans.models import build_network
from medtrans.report import build_report
from medtrans.report.collect import RunRecord, Series, collect_run
from medtrans.report.compare import (
    PairedDifference,
    build_comparison,
    format_duration,
    training_seconds,
    verdict_sentence,
)
from medtrans.report.figures import DPI, PANEL_INCHES
from medtrans.report.html import format_number
from medtrans.report.montage import ERROR_MAX_HU, subject_montage
from test_report import (
    PATIENT_ID,
    PNG_SIGNATURE,
    PNG_URI,
    TEST_SUBJECTS,
    embedded_pngs,
    tables_of,
    write_config,
    write_evaluation,
    write_paired_cohort,
    write_predictions,
    write_split,
    write_training_log,
)

UNET = {"kind": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 4, "norm": "batch",
        "dropout": 0.5, "num_downs": 3}
RESNET = {"kind": "resnet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 4, "norm": "instance",
          "dropout": 0.0, "n_blocks": 1}
PATCHGAN = {"kind": "patchgan", "spatial_dims": 2, "in_channels": 1, "ndf": 4, "n_layers": 2, "norm": "instance"}
# recipe -> (prediction offset from the real CT in HU, metrics seed, seconds per step, networks, translator)
RECIPES = {
    "pix2pix": (30.0, 7, 0.05, {"G": UNET, "D": {**PATCHGAN, "in_channels": 2}}, "G"),
    "cyclegan": (-120.0, 11, 0.12, {"G_AB": RESNET, "G_BA": RESNET, "D_A": PATCHGAN, "D_B": PATCHGAN}, "G_AB"),
}
METRICS = ("mae", "psnr", "ssim", "bone_dice")
TITLES = {"mae": "MAE (HU)", "psnr": "PSNR (dB)", "ssim": "SSIM", "bone_dice": "bone Dice"}
BASELINE = "lookup baseline"


def make_comparison(root: Path) -> tuple[Path, list[Path], dict[str, dict[str, dict[str, str]]]]:
    """A finished comparison as `medtrans.pipeline.compare` lays it out; returns (parent, runs, metric cells).

    The sub-runs share the parent's preprocessed cohort (``preprocessed_dir``); s03's real CT is a
    DICOM series carrying a patient name and ID.
    """
    parent = root / "runs" / "cmp"
    cts = write_paired_cohort(root, parent / "preprocessed", dicom_subject="s03")
    write_split(parent)
    runs, cells = [], {}
    for recipe, (offset_hu, seed, seconds_per_step, networks, translator) in RECIPES.items():
        run = parent / recipe
        run.mkdir()
        write_config(run, recipe, paired=True, preprocessed_dir=parent / "preprocessed")
        write_split(run)
        write_predictions(run, cts, offset_hu)
        write_training_log(run, ["loss_d", "loss_g_l1"], ["val_mae"], seconds_per_step)
        cells[recipe] = write_evaluation(run, TEST_SUBJECTS, seed)
        write_checkpoint(run / "checkpoints" / "best.pt", {"name": recipe, "data": {"paired": "x"}}, networks,
                         translator)
        runs.append(run)
    cells[BASELINE] = write_evaluation(runs[0], TEST_SUBJECTS, seed=3, folder="evaluation/baseline")
    return parent, runs, cells


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], dict, str]:
    root = tmp_path_factory.mktemp("compare")
    parent, runs, cells = make_comparison(root)
    return parent, runs, cells, build_comparison(parent, runs).read_text()


def table_with_header(page: str, first_header: str, second_header: str) -> list[list[tuple[str, str | None]]]:
    return next(t for t in tables_of(page) if t[0][0][0] == first_header and t[0][1][0] == second_header)


def test_comparison_page_is_written_next_to_the_runs_and_embeds_its_figures(comparison: tuple) -> None:
    parent, _, _, page = comparison
    assert (parent / "compare.html").is_file()
    assert page.startswith("<!DOCTYPE html>") and "<h1>pix2pix vs cyclegan</h1>" in page
    pngs = embedded_pngs(page)
    assert len(pngs) == page.count(PNG_URI) == 3  # box plots, one montage per test subject
    assert all(png.startswith(PNG_SIGNATURE) for png in pngs)
    boxes = matplotlib.image.imread(io.BytesIO(pngs[0]), format="png")
    montage = matplotlib.image.imread(io.BytesIO(pngs[1]), format="png")
    assert boxes[..., :3].std() > 0.05 and montage[..., :3].std() > 0.1
    assert montage.shape[1] > 6 * PANEL_INCHES * DPI  # six columns side by side
    assert all(s.startswith(PNG_URI) for s in re.findall(r'src="([^"]*)"', page))
    assert all(link.startswith("#") for link in re.findall(r'href="([^"]*)"', page))
    assert "<script" not in page and "box missing" not in page and "box bad" not in page


def test_per_subject_table_holds_the_values_of_every_metrics_csv(comparison: tuple) -> None:
    _, _, cells, page = comparison
    metrics = table_with_header(page, "subject", "pix2pix MAE (HU)")
    headers = [text for text, _ in metrics[0]]
    assert headers == ["subject", *(f"{label} {TITLES[m]}" for m in METRICS for label in cells)]
    assert [row[0][0] for row in metrics[1:]] == list(TEST_SUBJECTS)
    for row in metrics[1:]:
        subject = row[0][0]
        for (header, _), (text, exact) in zip(metrics[0][1:], row[1:]):
            label, metric = next((lab, m) for m in METRICS for lab in cells if header == f"{lab} {TITLES[m]}")
            assert exact == cells[label][subject][metric]
            if exact == "NaN":
                assert text == "n/a"
            else:
                assert text == format_number(float(exact))


def test_paired_differences_are_cyclegan_minus_pix2pix(comparison: tuple) -> None:
    _, _, cells, page = comparison
    differences = table_with_header(page, "subject", "\u0394 MAE (HU)")
    for row in differences[1:]:
        subject = row[0][0]
        for metric, (_, exact) in zip(METRICS, row[1:]):
            expected = float(cells["cyclegan"][subject][metric]) - float(cells["pix2pix"][subject][metric])
            if np.isnan(expected):
                assert exact == ""
            else:
                assert float(exact) == expected
    statistics = {row[0][0]: row for row in table_with_header(page, "metric", "n")[1:]}
    mae = np.array([float(cells["cyclegan"][s]["mae"]) - float(cells["pix2pix"][s]["mae"]) for s in TEST_SUBJECTS])
    row = statistics["MAE (HU)"]
    assert float(row[1][1]) == 2 and float(row[2][1]) == pytest.approx(mae.mean(), rel=1e-12)
    assert float(row[3][1]) == pytest.approx(mae.std(ddof=1), rel=1e-12)
    assert (float(row[4][1]), float(row[5][1]), float(row[6][1])) == ((mae < 0).sum(), (mae > 0).sum(), 0)
    assert row[7][0] == "too few subjects (n < 5)"
    assert float(statistics["bone Dice"][1][1]) == 1  # s03's bone Dice is undefined in both runs


def test_verdict_is_written_from_the_numbers(comparison: tuple) -> None:
    _, _, cells, page = comparison
    mae = {label: np.array([float(cells[label][s]["mae"]) for s in TEST_SUBJECTS]) for label in cells}
    difference = mae["cyclegan"] - mae["pix2pix"]
    leader = "cyclegan" if difference.mean() < 0 else "pix2pix"
    wins = int((difference < 0).sum() if leader == "cyclegan" else (difference > 0).sum())
    expected = (f"{leader} has lower MAE on {wins} of 2 test subjects (mean difference "
                f"{format_number(abs(difference.mean()))} HU); too few subjects for a significance test (n &lt; 5).")
    assert expected in page
    ratio = format_number(mae["pix2pix"].mean() / mae[BASELINE].mean())
    assert f"Lookup baseline mean MAE {format_number(mae[BASELINE].mean())} HU" in page
    assert f"pix2pix {ratio}" in page


def test_setup_shows_budget_training_time_and_parameters(comparison: tuple) -> None:
    _, _, _, page = comparison
    setup = {row[0][0]: row[1:] for row in table_with_header(page, "", "pix2pix")[1:]}
    assert [text for text, _ in setup["training steps (config)"]] == ["1000", "1000"]
    assert [text for text, _ in setup["batch size"]] == ["4", "4"]
    assert [float(value) for _, value in setup["training time"]] == [50.0, 120.0]  # last logged 'seconds'
    assert [text for text, _ in setup["training time"]] == ["50 s", "2 min 00 s"]
    for (label, (*_, networks, translator)), (_, count) in zip(RECIPES.items(),
                                                               setup["parameters (generator used for inference)"]):
        assert float(count) == sum(p.numel() for p in build_network(networks[translator]).parameters())
    total = sum(p.numel() for args in RECIPES["cyclegan"][3].values() for p in build_network(args).parameters())
    assert float(setup["parameters (all networks trained)"][1][1]) == total


def test_montage_puts_both_recipes_and_both_error_maps_side_by_side(comparison: tuple) -> None:
    _, runs, _, _ = comparison
    pix2pix, cyclegan = collect_run(runs[0]), collect_run(runs[1])
    montage = subject_montage(pix2pix, "s04", predicted_by={"pix2pix": pix2pix, "cyclegan": cyclegan})
    assert montage.notes == []  # the input MR came from the parent's preprocessed folder
    assert [p.title for p in montage.panels] == ["input (MR)", "pix2pix (CT)", "cyclegan (CT)", "real (CT)",
                                                 "|pix2pix - real| (HU)"]
    assert montage.error.title == "|cyclegan - real| (HU)"
    assert montage.panels[-1].window == montage.error.window == (0.0, ERROR_MAX_HU)
    for plane_pix2pix, plane_cyclegan in zip(montage.panels[-1].slices, montage.error.slices):
        np.testing.assert_allclose(plane_pix2pix, 30.0, atol=1e-3)
        np.testing.assert_allclose(plane_cyclegan, 120.0, atol=1e-3)


def test_rebuilding_gives_the_same_bytes(comparison: tuple, tmp_path: Path) -> None:
    parent, runs, _, _ = comparison
    again = build_comparison(parent, runs, tmp_path)
    assert again == tmp_path / "compare.html"
    assert again.read_bytes() == (parent / "compare.html").read_bytes()


def test_identity_and_input_paths_never_leak(comparison: tuple) -> None:
    parent, _, _, page = comparison
    root = parent.parent.parent
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page).lower()
    for secret in ("DOE", "JANE", PATIENT_ID, str(root)):
        assert secret.lower() not in text
        assert all(secret.encode() not in png for png in embedded_pngs(page))


def test_unfair_budget_and_missing_baseline_are_shown(comparison: tuple, tmp_path: Path) -> None:
    parent, _, cells, _ = comparison
    copy = tmp_path / "cmp"
    shutil.copytree(parent, copy)
    config = copy / "cyclegan" / "config.yaml"
    config.write_text(config.read_text().replace("steps: 1000", "steps: 2000"))
    shutil.rmtree(copy / "pix2pix" / "evaluation" / "baseline")
    page = build_comparison(copy, [copy / "pix2pix", copy / "cyclegan"]).read_text()
    unfair = re.search(r'<div class="box bad">(.*?)</div>', page, re.S).group(1)
    assert "train.steps differs: pix2pix 1000, cyclegan 2000" in unfair
    assert BASELINE not in page
    headers = [text for text, _ in table_with_header(page, "subject", "pix2pix MAE (HU)")[0]]
    assert headers == ["subject", *(f"{label} {TITLES[m]}" for m in METRICS for label in ("pix2pix", "cyclegan"))]


def test_comparison_before_evaluation_still_gives_a_page(comparison: tuple, tmp_path: Path) -> None:
    parent, _, _, _ = comparison
    copy = tmp_path / "cmp"
    shutil.copytree(parent, copy)
    for recipe in RECIPES:
        shutil.rmtree(copy / recipe / "evaluation")
    page = build_comparison(copy, [copy / "pix2pix", copy / "cyclegan"]).read_text()
    assert "No test subject has metrics from both pix2pix and cyclegan yet." in page
    assert "No evaluation yet" in page and "pix2pix: evaluation/metrics.csv" in page
    assert page.count(PNG_URI) == 2  # the montages need predictions only


def test_comparison_refuses_missing_folders_and_overwriting_inputs(comparison: tuple, tmp_path: Path) -> None:
    parent, runs, _, _ = comparison
    with pytest.raises(MedtransError, match="not a medtrans run folder"):
        build_comparison(parent, [runs[0], tmp_path])
    with pytest.raises(MedtransError, match="input of the comparison report"):
        build_comparison(parent, runs, parent / "split.json")


def test_sub_run_report_reads_the_parents_cohort_and_shows_the_baseline(comparison: tuple, tmp_path: Path) -> None:
    _, runs, cells, _ = comparison
    page = build_report(runs[0], tmp_path / "report.html").read_text()
    assert "box missing" not in page  # manifest found through preprocessed_dir
    assert page.count(PNG_URI) == 6 and "no &#x27;mr_on_ct&#x27;" not in page
    baseline_mae = np.mean([float(cells[BASELINE][s]["mae"]) for s in TEST_SUBJECTS])
    assert f"lookup baseline {format_number(baseline_mae)} HU; ratio" in page


# ---------------------------------------------------------------------------------------------
# Pieces


def test_wilcoxon_is_reported_from_five_subjects() -> None:
    differences = np.array([-12.0, -3.5, -8.25, 1.5, -20.0])
    diff = PairedDifference("mae", ["a", "b", "c", "d", "e"], differences, lower_is_better=True)
    assert diff.wins() == (4, 1, 0)
    assert diff.wilcoxon_p() == pytest.approx(stats.wilcoxon(differences).pvalue)
    assert diff.wilcoxon_p() == pytest.approx(4 / 32)  # exact: 2 of 32 sign patterns as extreme, both tails
    sentence = verdict_sentence("pix2pix", "cyclegan", diff, "HU")
    assert sentence == ("cyclegan has lower MAE on 4 of 5 test subjects (mean difference 8.45 HU); "
                        "Wilcoxon signed-rank p = 0.125.")
    four = PairedDifference("psnr", list("abcd"), np.array([1.0, 2.0, -0.5, 3.0]), lower_is_better=False)
    assert four.wilcoxon_p() is None and four.wins() == (3, 1, 0)
    assert verdict_sentence("pix2pix", "cyclegan", four, "dB").startswith("cyclegan has higher PSNR on 3 of 4")


def test_training_time_adds_up_resumed_sessions() -> None:
    run = RunRecord(folder=Path("x"))
    run.training = {"seconds": Series(np.array([10.0, 20, 30, 40, 50]), np.array([5.0, 10, 2, 4, 6]))}
    assert training_seconds(run) == 16.0
    assert training_seconds(RunRecord(folder=Path("x"))) is None
    assert [format_duration(s) for s in (42.5, 125, 3725, None)] == ["42.5 s", "2 min 05 s", "1 h 02 min", "n/a"]

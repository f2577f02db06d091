"""Fault injection: broken study configs given to `medtrans train` (the config is read the same way
by `preprocess` and `run`). Each is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from faultkit import single_torch_thread  # noqa: F401 (a fixture, used through pytestmark)
from faultkit import assert_clean_error, run_cli, tiny_train_values, write_config

pytestmark = [pytest.mark.faults, pytest.mark.usefixtures("single_torch_thread")]


def nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "runs").exists()


def test_unknown_key_is_named_with_the_keys_expected(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = tiny_train_values(tmp_path)
    values["train"]["stepz"] = 10
    config = write_config(tmp_path / "study.yaml", values)
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", str(config), "unknown key train.stepz", "expected one of:", "steps")
    nothing_written(tmp_path)


def test_wrong_type_is_named_with_the_type_expected(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = tiny_train_values(tmp_path)
    values["train"]["steps"] = "many"
    config = write_config(tmp_path / "study.yaml", values)
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", str(config), "train.steps: expected an integer, got 'many'")
    nothing_written(tmp_path)


def test_wrong_type_in_a_list_names_the_element(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    values = tiny_train_values(tmp_path)
    values["preprocess"] = {"spacing_mm": [1.0, "two", 1.0]}
    config = write_config(tmp_path / "study.yaml", values)
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", "preprocess.spacing_mm[1]: expected a number, got 'two'")
    nothing_written(tmp_path)


def test_invalid_yaml_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "study.yaml"
    config.write_text("name: demo\ntrain: {steps: 3\n")
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", str(config), "not valid YAML")
    nothing_written(tmp_path)


def test_missing_config_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    result = run_cli(["train", tmp_path / "nowhere.yaml"], capsys)
    assert_clean_error(result, "train", "nowhere.yaml", "config file not found")



@pytest.mark.parametrize("key", ["output_root", "preprocessed_dir"])
def test_output_folder_equal_to_the_input_folder_is_refused(key: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture) -> None:
    cohort = tmp_path / "in"
    (cohort / "p01").mkdir(parents=True)
    values = tiny_train_values(tmp_path)
    values[key] = str(cohort)
    config = write_config(tmp_path / "study.yaml", values)
    result = run_cli(["train", config], capsys)
    assert_clean_error(result, "train", key, "data.paired")
    assert sorted(p.name for p in cohort.iterdir()) == ["p01"]

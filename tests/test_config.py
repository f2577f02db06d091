"""Config loading: defaults, type checks and messages that name the key."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from medtrans.config import Config, config_from_dict, config_to_dict, dump_config, load_config, resolve_paths
from medtrans.errors import ConfigError

MINIMAL = {"name": "demo", "data": {"paired": "sample_data/paired"}}


def test_defaults_fill_every_section() -> None:
    cfg = config_from_dict(MINIMAL)
    assert cfg.preprocess.spacing_mm == (2.0, 2.0, 2.0)
    assert cfg.train.recipe == "pix2pix" and cfg.train.lambda_l1 == 100.0
    assert cfg.dataset.split.train == 0.7


def test_lists_become_tuples_and_ints_become_floats() -> None:
    cfg = config_from_dict({**MINIMAL, "preprocess": {"spacing_mm": [1, 1, 2]}})
    assert cfg.preprocess.spacing_mm == (1.0, 1.0, 2.0)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**MINIMAL, "trian": {}}, "unknown key trian"),
        ({**MINIMAL, "train": {"stesp": 3}}, "unknown key train.stesp"),
        ({**MINIMAL, "train": {"steps": "many"}}, "train.steps: expected an integer, got 'many'"),
        ({**MINIMAL, "train": {"steps": 2.5}}, "train.steps: expected an integer"),
        ({**MINIMAL, "preprocess": {"spacing_mm": [1, 1]}}, "preprocess.spacing_mm: expected a list of 3 numbers"),
        ({**MINIMAL, "preprocess": {"register": "elastic"}}, "preprocess.register: expected one of 'rigid'"),
        ({**MINIMAL, "dataset": {"augment": "yes"}}, "dataset.augment: expected true or false"),
        ({**MINIMAL, "dataset": {"split": {"train": 0.9, "val": 0.2, "test": 0.1}}}, "sum to 1"),
        ({**MINIMAL, "preprocess": {"spacing_mm": [1, 0, 1]}}, "must be positive"),
        ({"name": "x", "data": {"domain_a": "a"}}, "give either data.paired"),
        ({"name": "x", "data": {"domain_a": "a", "domain_b": "b"}}, "pix2pix needs paired data"),
        ({**MINIMAL, "dataset": {"kind": "2.5d", "context_slices": 4}}, "must be odd"),
    ],
)
def test_bad_values_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        config_from_dict(values)


def test_yaml_round_trip(tmp_path: Path) -> None:
    cfg = config_from_dict({**MINIMAL, "train": {"steps": 7}, "model": {"n_blocks": 6}})
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg
    assert config_to_dict(load_config(path)) == config_to_dict(cfg)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: x\ndata: {paired: p}\nmodel: {ngf: big}\n")
    with pytest.raises(ConfigError, match=f"{typo}: model.ngf"):
        load_config(typo)


def test_resolve_paths_makes_them_absolute(tmp_path: Path) -> None:
    cfg = resolve_paths(config_from_dict(MINIMAL), base=tmp_path)
    assert cfg.data.paired == str(tmp_path.resolve() / "sample_data" / "paired")
    assert cfg.run_dir == tmp_path.resolve() / "runs" / "demo"


def test_cyclegan_gets_the_cyclegan_papers_defaults_unless_given() -> None:
    base = {"name": "c", "data": {"domain_a": "a", "domain_b": "b"}}
    cfg = config_from_dict({**base, "train": {"recipe": "cyclegan"}})
    assert (cfg.model.generator, cfg.model.norm, cfg.train.gan_mode) == ("resnet", "instance", "lsgan")
    cfg = config_from_dict({**base, "train": {"recipe": "cyclegan", "gan_mode": "vanilla"}, "model": {"norm": "batch"}})
    assert (cfg.model.generator, cfg.model.norm, cfg.train.gan_mode) == ("resnet", "batch", "vanilla")


def test_compare_lists_known_recipes() -> None:
    cfg = config_from_dict({**MINIMAL, "compare": {"recipes": ["pix2pix", "cyclegan"]}})
    assert cfg.compare.recipes == ("pix2pix", "cyclegan")
    with pytest.raises(ConfigError, match="compare.recipes: unknown"):
        config_from_dict({**MINIMAL, "compare": {"recipes": ["unit"]}})
    with pytest.raises(ConfigError, match="compare.recipes: expected a list of strings"):
        config_from_dict({**MINIMAL, "compare": {"recipes": "pix2pix"}})


def test_shipped_pipeline_configs_load() -> None:
    root = Path(__file__).resolve().parents[1] / "pipelines"
    configs = sorted(root.glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        load_config(path)


def test_every_config_key_is_documented() -> None:
    reference = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()

    def walk(cls: type) -> list[str]:
        hints = typing.get_type_hints(cls)
        names = []
        for f in dataclasses.fields(cls):
            names.append(f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                names += walk(hints[f.name])
        return names

    missing = [key for key in walk(Config) if f"`{key}`" not in reference]
    assert not missing, f"keys missing from docs/config.md: {missing}"

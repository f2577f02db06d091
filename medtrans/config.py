"""The study config: one frozen dataclass per stage, loaded from YAML and validated.

Every key is typed; unknown keys, wrong types and invalid values raise `ConfigError` naming the
key path (``preprocess.spacing_mm``) and what was expected. The resolved config (defaults filled
in, paths absolute) is saved in the run folder and in every checkpoint, so a study rebuilds from it.

Example:
    >>> cfg = config_from_dict({"name": "demo", "data": {"paired": "sample_data/paired"}})
    >>> cfg.preprocess.orientation
    'RAS'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from medtrans.errors import ConfigError

Modality = Literal["mr", "ct"]


@dataclass(frozen=True)
class DataConfig:
    """What the user brings: a paired cohort, or two unpaired cohorts (domain A -> domain B).

    ``paired`` is a folder laid out as ``<subject>/mr.*`` + ``<subject>/ct.*`` (or DICOM folders
    ``<subject>/mr/``, ``<subject>/ct/``) or a CSV with columns subject, mr, ct.
    ``domain_a`` / ``domain_b`` are folders of volumes (one file or DICOM folder per subject) or CSVs
    with columns subject, image. Relative paths are taken from the folder medtrans is run in.
    """

    paired: Optional[str] = None
    domain_a: Optional[str] = None
    domain_b: Optional[str] = None
    modality_a: Modality = "mr"
    modality_b: Modality = "ct"


@dataclass(frozen=True)
class PreprocessConfig:
    """Reorient, resample, register (paired), mask, crop/pad and normalize every subject."""

    orientation: str = "RAS"
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    interpolation: Literal["linear", "bspline"] = "linear"
    register: Literal["rigid", "affine", "bspline", "none"] = "rigid"
    registration_iterations: int = 200
    registration_sampling: float = 0.1
    min_body_dice: float = 0.90
    mi_outlier_fraction: float = 0.8
    ct_window_hu: tuple[float, float] = (-1024.0, 3000.0)
    mr_norm: Literal["percentile", "zscore"] = "percentile"
    mr_percentiles: tuple[float, float] = (0.5, 99.5)
    crop_margin_mm: float = 8.0
    pad_multiple: int = 16
    workers: int = 1


@dataclass(frozen=True)
class SplitConfig:
    """Fractions of subjects per set; split by subject, seeded."""

    train: float = 0.7
    val: float = 0.15
    test: float = 0.15


@dataclass(frozen=True)
class DatasetConfig:
    """How preprocessed volumes become training samples."""

    kind: Literal["2d", "2.5d", "3d"] = "2d"
    axis: Literal["axial", "coronal", "sagittal"] = "axial"
    context_slices: int = 3
    patch_size: tuple[int, int, int] = (64, 64, 64)
    min_body_fraction: float = 0.05
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: bool = True
    samples_per_epoch: int = 0
    num_workers: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator architecture (2D or 3D follows ``dataset.kind``)."""

    generator: Literal["unet", "resnet"] = "unet"
    ngf: int = 64
    ndf: int = 64
    norm: Literal["instance", "batch"] = "batch"
    n_layers_d: int = 3
    n_blocks: Optional[int] = None
    dropout: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Training recipe, optimisation and engine settings."""

    recipe: Literal["pix2pix", "cyclegan"] = "pix2pix"
    steps: int = 3000
    batch_size: int = 8
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5
    gan_mode: Literal["vanilla", "lsgan"] = "vanilla"
    lambda_l1: float = 100.0
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    checkpoint_every: int = 500
    val_every: int = 500
    log_every: int = 10
    device: str = "auto"
    amp: Literal["auto", "bf16", "fp16", "none"] = "auto"
    channels_last: bool = True
    deterministic: bool = False


@dataclass(frozen=True)
class InferConfig:
    """Volume-in, volume-out inference settings."""

    batch_size: int = 16
    overlap: float = 0.5
    background_hu: float = -1000.0
    mask_outside_body: bool = True
    device: str = "auto"


@dataclass(frozen=True)
class EvaluateConfig:
    """Metric settings: SynthRAD2023 definitions inside the body mask of the real CT."""

    device: str = "auto"


@dataclass(frozen=True)
class CompareConfig:
    """Train several recipes on the same preprocessed cohort and split, with the same budget, and compare."""

    recipes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole study: one section per stage."""

    name: str = "study"
    seed: int = 0
    output_root: str = "runs"
    preprocessed_dir: Optional[str] = None
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    compare: CompareConfig = field(default_factory=CompareConfig)

    @property
    def run_dir(self) -> Path:
        """The run folder: ``<output_root>/<name>``."""
        return Path(self.output_root) / self.name

    @property
    def preprocessed_path(self) -> Path:
        """Where the preprocessed cohort lives: ``preprocessed_dir``, else ``<run_dir>/preprocessed``."""
        return Path(self.preprocessed_dir) if self.preprocessed_dir else self.run_dir / "preprocessed"


_PLURAL = {int: "integers", float: "numbers", str: "strings"}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        return f"a list of {len(args)} {_PLURAL.get(args[0], _type_name(args[0]))}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (lists to tuples)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return _build(tp, value, key + ".")
    if origin in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin is tuple and len(typing.get_args(tp)) == 2 and typing.get_args(tp)[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list of {_PLURAL.get(typing.get_args(tp)[0])}, got {value!r}")
        return tuple(_convert(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} at {key}")


def _build(cls: type, values: dict, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(prefix + k for k in unknown)}; "
            f"expected one of: {', '.join(sorted(names))}"
        )
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in values.items()}
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    """Checks that span several keys or need value ranges."""
    d = cfg.data
    if d.paired is None and (d.domain_a is None or d.domain_b is None):
        raise ConfigError("data: give either data.paired, or both data.domain_a and data.domain_b")
    if any(s <= 0 for s in cfg.preprocess.spacing_mm):
        raise ConfigError(f"preprocess.spacing_mm: must be positive, got {cfg.preprocess.spacing_mm}")
    lo, hi = cfg.preprocess.ct_window_hu
    if lo >= hi:
        raise ConfigError(f"preprocess.ct_window_hu: lower bound must be below upper, got {(lo, hi)}")
    p_lo, p_hi = cfg.preprocess.mr_percentiles
    if not 0 <= p_lo < p_hi <= 100:
        raise ConfigError(f"preprocess.mr_percentiles: need 0 <= low < high <= 100, got {(p_lo, p_hi)}")
    s = cfg.dataset.split
    if min(s.train, s.val, s.test) < 0 or abs(s.train + s.val + s.test - 1.0) > 1e-6:
        raise ConfigError(f"dataset.split: fractions must be >= 0 and sum to 1, got {dataclasses.asdict(s)}")
    if cfg.dataset.kind == "2.5d" and cfg.dataset.context_slices % 2 == 0:
        raise ConfigError(f"dataset.context_slices: must be odd, got {cfg.dataset.context_slices}")
    if cfg.train.recipe == "pix2pix" and d.paired is None:
        raise ConfigError("train.recipe: pix2pix needs paired data (data.paired)")
    for key in ("steps", "batch_size", "checkpoint_every", "val_every", "log_every"):
        if getattr(cfg.train, key) < 1:
            raise ConfigError(f"train.{key}: must be at least 1, got {getattr(cfg.train, key)}")
    unknown_recipes = sorted(set(cfg.compare.recipes) - {"pix2pix", "cyclegan"})
    if unknown_recipes:
        raise ConfigError(f"compare.recipes: unknown recipe(s) {unknown_recipes}; expected pix2pix and/or cyclegan")
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise ConfigError(f"name: must be a plain folder name, got {cfg.name!r}")


RECIPE_DEFAULTS = {
    "pix2pix": {},
    "cyclegan": {"model": {"generator": "resnet", "norm": "instance", "dropout": 0.0}, "train": {"gan_mode": "lsgan"}},
}
"""Defaults that follow the recipe (the CycleGAN paper's choices), applied where the user gave no value."""


def with_recipe_defaults(values: dict) -> dict:
    """``values`` with the recipe's defaults filled in for keys the user left out."""
    recipe = (values.get("train") or {}).get("recipe", "pix2pix") if isinstance(values.get("train"), dict) else None
    merged = dict(values)
    for section, defaults in RECIPE_DEFAULTS.get(recipe, {}).items():
        given = merged.get(section) or {}
        if isinstance(given, dict):
            merged[section] = {**defaults, **given}
    return merged


def config_from_dict(values: dict, source: str = "config") -> Config:
    """Build and validate a `Config` from plain data; errors are prefixed with ``source``."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(values).__name__}")
    try:
        cfg = _build(Config, with_recipe_defaults(values), "")
        _validate(cfg)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(path: str | Path) -> Config:
    """Read a YAML config file and validate it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return config_from_dict(values or {}, source=str(path))


def config_to_dict(cfg: Config) -> dict:
    """Plain data (lists, not tuples) for YAML, JSON and checkpoints."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def resolve_paths(cfg: Config, base: Path | None = None) -> Config:
    """Make data and output paths absolute (against ``base``, default the current folder)."""
    base = (base or Path.cwd()).resolve()

    def absolute(p: Optional[str]) -> Optional[str]:
        return None if p is None else str((base / p).resolve())

    data = dataclasses.replace(cfg.data, paired=absolute(cfg.data.paired),
                               domain_a=absolute(cfg.data.domain_a), domain_b=absolute(cfg.data.domain_b))
    resolved = dataclasses.replace(cfg, data=data, output_root=absolute(cfg.output_root),
                                   preprocessed_dir=absolute(cfg.preprocessed_dir))
    check_outputs_outside_inputs(resolved)
    return resolved


def check_outputs_outside_inputs(cfg: Config) -> None:
    """Refuse an output folder that is, or lies inside, an input cohort folder (outputs never touch inputs)."""
    inputs = {key: Path(value) for key, value in
              (("data.paired", cfg.data.paired), ("data.domain_a", cfg.data.domain_a), ("data.domain_b", cfg.data.domain_b))
              if value is not None}
    outputs = {"output_root": cfg.run_dir, "preprocessed_dir": cfg.preprocessed_path}
    for out_key, out_path in outputs.items():
        for in_key, in_path in inputs.items():
            folder = in_path if in_path.suffix.lower() != ".csv" else in_path.parent
            if out_path == folder or folder in out_path.parents:
                raise ConfigError(f"{out_key}: the output folder {out_path} is inside the input folder {in_key} "
                                  f"({folder}); outputs must never be written into the inputs")


def dump_config(cfg: Config) -> str:
    """The config as YAML text, every key written out."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)

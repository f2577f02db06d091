"""pix2pix versus CycleGAN on one paired cohort: same preprocessing, split, steps and batch size."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from medtrans.config import Config, config_from_dict, config_to_dict
from medtrans.data import load_manifest, make_split, save_split
from medtrans.data.builder import subjects_by_group
from medtrans.pipeline.stages import STAGES, Study, say


def recipe_config(cfg: Config, raw_values: dict, recipe: str) -> Config:
    """The sub-study of ``recipe``: ``<run>/<recipe>``, sharing the parent's preprocessed cohort.

    Built from the user's raw values so keys the user left out take the recipe's own defaults.
    """
    values = copy.deepcopy(raw_values)
    values.pop("compare", None)
    values.setdefault("train", {})["recipe"] = recipe
    values.update(name=recipe, output_root=str(cfg.run_dir), preprocessed_dir=str(cfg.preprocessed_path),
                  data=config_to_dict(cfg)["data"])
    return config_from_dict(values, source=f"{cfg.name} ({recipe})")


def shared_split(cfg: Config) -> Path:
    """The parent's split.json (made once from the preprocessed cohort), copied into every sub-study."""
    path = cfg.run_dir / "split.json"
    if not path.is_file():
        manifest = load_manifest(cfg.preprocessed_path)
        save_split(make_split(subjects_by_group(manifest), cfg.dataset.split, cfg.seed), path)
    return path


def run_comparison(cfg: Config, raw_values: dict, force_from: str | None = None) -> Path:
    """Preprocess once, run each recipe's study, then write the comparison report."""
    from medtrans.report.compare import build_comparison

    parent = Study(cfg, force_from)
    parent.preprocess()
    split = shared_split(cfg)
    sub_force = None if force_from is None else STAGES[max(1, STAGES.index(force_from))]
    run_dirs = []
    for recipe in cfg.compare.recipes:
        sub_cfg = recipe_config(cfg, raw_values, recipe)
        sub_cfg.run_dir.mkdir(parents=True, exist_ok=True)
        if not (sub_cfg.run_dir / "split.json").is_file():
            shutil.copyfile(split, sub_cfg.run_dir / "split.json")
        say(f"{recipe}: study in {sub_cfg.run_dir}")
        Study(sub_cfg, sub_force).run(with_preprocess=False)
        run_dirs.append(sub_cfg.run_dir)
    say("compare: building the comparison report")
    return build_comparison(cfg.run_dir, run_dirs)

"""Build the training dataset a config asks for, from the preprocessed folder and the split."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from medtrans.config import Config
from medtrans.data.augment import build_augment
from medtrans.data.datasets import PairedDataset, SampleSource, UnpairedDataset
from medtrans.data.manifest import SubjectArrays, load_manifest, load_subject, usable_records
from medtrans.data.views import view_from_config
from medtrans.errors import MedtransError


def domain_keys(manifest: dict) -> tuple[str, str]:
    """Image keys of domain A and B: (mr, ct) for a paired cohort, (image, image) for unpaired."""
    return ("mr", "ct") if manifest["mode"] == "paired" else ("image", "image")


def domain_modalities(cfg: Config, manifest: dict) -> tuple[str, str]:
    """Modalities of domain A and B ("mr" or "ct")."""
    return ("mr", "ct") if manifest["mode"] == "paired" else (cfg.data.modality_a, cfg.data.modality_b)


def subjects_by_group(manifest: dict) -> dict[str, list[str]]:
    """Usable subject IDs grouped for a stratified split: one group for paired, one per domain otherwise."""
    groups: dict[str, list[str]] = {}
    for record in usable_records(manifest):
        groups.setdefault(record.get("domain", "paired"), []).append(record["subject"])
    return groups


def load_subjects(preprocessed_dir: str | Path, manifest: dict, subject_ids: list[str]) -> list[SubjectArrays]:
    """Map the listed subjects' arrays (usable records only)."""
    wanted = set(subject_ids)
    return [load_subject(preprocessed_dir, r) for r in usable_records(manifest) if r["subject"] in wanted]


def channels(cfg: Config) -> tuple[int, int]:
    """(input channels, output channels) of the generator(s) for this dataset kind and recipe."""
    k = cfg.dataset.context_slices if cfg.dataset.kind == "2.5d" else 1
    return (k, 1) if cfg.train.recipe == "pix2pix" else (k, k)


def build_training_dataset(cfg: Config, preprocessed_dir: str | Path, train_ids: list[str]) -> Dataset:
    """PairedDataset for pix2pix; UnpairedDataset for CycleGAN (on a paired cohort, pairs are ignored)."""
    manifest = load_manifest(preprocessed_dir)
    view = view_from_config(cfg.dataset)
    key_a, key_b = domain_keys(manifest)
    modality_a, modality_b = domain_modalities(cfg, manifest)
    subjects = load_subjects(preprocessed_dir, manifest, train_ids)
    if not subjects:
        raise MedtransError(f"{preprocessed_dir}: no usable training subjects among {train_ids}")
    epoch = cfg.dataset.samples_per_epoch
    if cfg.train.recipe == "pix2pix":
        if manifest["mode"] != "paired":
            raise MedtransError("train.recipe: pix2pix needs a paired cohort; this one is unpaired")
        augment = build_augment(view, ["source", "target"], ["source"]) if cfg.dataset.augment else None
        return PairedDataset(SampleSource(subjects, view, epoch), key_a, key_b, augment)
    if manifest["mode"] == "paired":
        side_a = side_b = subjects
    else:
        side_a = [s for s in subjects if s.domain == "a"]
        side_b = [s for s in subjects if s.domain == "b"]
        if not side_a or not side_b:
            raise MedtransError(f"{preprocessed_dir}: CycleGAN needs training subjects in both domains")

    def augment_for(modality: str):
        return build_augment(view, ["image"], ["image"] if modality == "mr" else []) if cfg.dataset.augment else None

    return UnpairedDataset(SampleSource(side_a, view, epoch), SampleSource(side_b, view, epoch), key_a, key_b,
                           augment_for(modality_a), augment_for(modality_b))

"""Datasets: pairing, 2.5D channel order, patch placement, subject split, augmentation, unpaired draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medtrans.config import Config, SplitConfig, config_from_dict
from medtrans.data import (
    PairedDataset,
    PatchView,
    SampleSource,
    SeededBatchSampler,
    SliceView,
    build_training_dataset,
    load_manifest,
    load_subject,
    make_split,
    subjects_by_group,
)
from medtrans.data.augment import build_augment
from fakes import write_preprocessed

SHAPE = (20, 18, 16)


@pytest.fixture
def paired_dir(tmp_path: Path) -> Path:
    return write_preprocessed(tmp_path / "pre", {f"p{i}": "paired" for i in range(6)}, "paired")


def config(**dataset: object) -> Config:
    return config_from_dict({"name": "t", "data": {"paired": "x"}, "dataset": {"augment": False, **dataset}})


def test_paired_slice_matches_the_volumes(paired_dir: Path) -> None:
    dataset = build_training_dataset(config(kind="2d"), paired_dir, ["p1", "p3"])
    manifest = load_manifest(paired_dir)
    volumes = {r["subject"]: load_subject(paired_dir, r) for r in manifest["subjects"] if r["status"] == "ok"}
    for index in range(len(dataset)):
        sample = dataset[(index, 0)]
        subject = volumes[sample["subject"]]
        k = sample["location"]
        assert sample["subject"] in ("p1", "p3")
        np.testing.assert_array_equal(sample["source"][0].numpy(), subject.images["mr"][:, :, k])
        np.testing.assert_array_equal(sample["target"][0].numpy(), subject.images["ct"][:, :, k])


def test_slices_without_body_are_skipped(paired_dir: Path) -> None:
    dataset = build_training_dataset(config(kind="2d"), paired_dir, ["p0"])
    locations = sorted(dataset[(i, 0)]["location"] for i in range(len(dataset)))
    assert locations == list(range(3, SHAPE[2] - 3))


def test_two_and_a_half_d_channels_follow_slice_order(paired_dir: Path) -> None:
    dataset = build_training_dataset(config(kind="2.5d", context_slices=5), paired_dir, ["p2"])
    subject = load_subject(paired_dir, next(r for r in load_manifest(paired_dir)["subjects"] if r["subject"] == "p2"))
    for index in range(len(dataset)):
        sample = dataset[(index, 0)]
        k = sample["location"]
        assert sample["source"].shape == (5, SHAPE[0], SHAPE[1])
        assert sample["target"].shape == (1, SHAPE[0], SHAPE[1])
        for channel, z in enumerate(range(k - 2, k + 3)):
            z = min(max(z, 0), SHAPE[2] - 1)
            np.testing.assert_array_equal(sample["source"][channel].numpy(), subject.images["mr"][:, :, z])


def test_slice_axis_is_configurable(paired_dir: Path) -> None:
    dataset = build_training_dataset(config(kind="2d", axis="coronal", min_body_fraction=0.0), paired_dir, ["p0"])
    assert dataset[(0, 0)]["source"].shape == (1, SHAPE[0], SHAPE[2])
    assert len(dataset) == SHAPE[1]


def test_patches_lie_inside_the_volume_and_mostly_in_the_body(paired_dir: Path) -> None:
    record = next(r for r in load_manifest(paired_dir)["subjects"] if r["subject"] == "p0")
    subject = load_subject(paired_dir, record)
    view = PatchView((8, 8, 8))
    source = SampleSource([subject], view, samples_per_epoch=200)
    rng = np.random.default_rng(1)
    body_centre_fraction = []
    for _ in range(200):
        start = view.random_location(source.candidates[0], rng, subject.mask.shape)
        assert np.all(start >= 0) and np.all(start + 8 <= np.array(SHAPE))
        body_centre_fraction.append(subject.mask[tuple(start + 4)])
    assert np.mean(body_centre_fraction) > 0.8
    dataset = PairedDataset(source)
    sample = dataset[(5, 123)]
    assert sample["source"].shape == (1, 8, 8, 8)
    # the target patch is the CT at the very place the MR patch came from
    mr, ct = subject.images["mr"], subject.images["ct"]
    starts = [(a, b, c) for a in range(SHAPE[0] - 7) for b in range(SHAPE[1] - 7) for c in range(SHAPE[2] - 7)
              if np.array_equal(mr[a:a + 8, b:b + 8, c:c + 8], sample["source"][0].numpy())]
    assert starts
    assert all(np.array_equal(ct[a:a + 8, b:b + 8, c:c + 8], sample["target"][0].numpy()) for a, b, c in starts)


def test_patch_grid_covers_the_volume() -> None:
    view = PatchView((8, 8, 8))
    covered = np.zeros(SHAPE, bool)
    for a, b, c in view.grid_starts(SHAPE, overlap=0.25):
        assert a + 8 <= SHAPE[0] and b + 8 <= SHAPE[1] and c + 8 <= SHAPE[2]
        covered[a:a + 8, b:b + 8, c:c + 8] = True
    assert covered.all()


def test_patches_of_volumes_smaller_than_the_patch_are_padded(paired_dir: Path) -> None:
    dataset = build_training_dataset(config(kind="3d", patch_size=[24, 16, 16]), paired_dir, ["p0"])
    assert dataset[(0, 7)]["source"].shape == (1, 24, 16, 16)


def test_split_is_by_subject_seeded_and_disjoint() -> None:
    groups = {"a": [f"a{i}" for i in range(9)], "b": [f"b{i}" for i in range(7)]}
    split = make_split(groups, SplitConfig(0.7, 0.15, 0.15), seed=3)
    assert split == make_split(groups, SplitConfig(0.7, 0.15, 0.15), seed=3)
    assert split != make_split(groups, SplitConfig(0.7, 0.15, 0.15), seed=4)
    everyone = split["train"] + split["val"] + split["test"]
    assert sorted(everyone) == sorted(groups["a"] + groups["b"])
    assert len(set(everyone)) == len(everyone)
    for name in ("val", "test"):
        assert any(s.startswith("a") for s in split[name]) and any(s.startswith("b") for s in split[name])


def test_split_leaves_out_flagged_subjects(paired_dir: Path) -> None:
    groups = subjects_by_group(load_manifest(paired_dir))
    assert groups == {"paired": [f"p{i}" for i in range(6)]}


def test_augmentation_keeps_pairs_aligned() -> None:
    view = SliceView(axis=2)
    augment = build_augment(view, ["source", "target"], [])
    image = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 32, 28)).astype(np.float32))
    changed = 0
    for seed in range(20):
        out = augment({"source": image.clone(), "target": image.clone()}, seed)
        torch.testing.assert_close(out["source"], out["target"], rtol=0, atol=0)
        changed += not torch.equal(out["source"], image)
    assert changed > 5


def test_augmentation_is_deterministic_per_seed() -> None:
    augment = build_augment(PatchView((8, 8, 8)), ["source", "target"], ["source"])
    image = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 8, 8, 8)).astype(np.float32))
    first = augment({"source": image, "target": image}, 11)
    second = augment({"source": image, "target": image}, 11)
    torch.testing.assert_close(first["source"], second["source"])


def test_unpaired_sampling_draws_from_both_cohorts(tmp_path: Path) -> None:
    subjects = {**{f"h{i}": "a" for i in range(4)}, **{f"d{i}": "b" for i in range(3)}}
    root = write_preprocessed(tmp_path / "pre", subjects, "unpaired")
    cfg = config_from_dict({"name": "t", "data": {"domain_a": "a", "domain_b": "b", "modality_b": "mr"},
                            "train": {"recipe": "cyclegan"}, "dataset": {"augment": True}})
    dataset = build_training_dataset(cfg, root, list(subjects))
    seen_a, seen_b = set(), set()
    for batch in SeededBatchSampler(len(dataset), 4, seed=0, start_step=0, num_steps=10):
        for key in batch:
            sample = dataset[key]
            assert sample["a"].shape == sample["b"].shape == (1, SHAPE[0], SHAPE[1])
            seen_a.add(sample["subject_a"])
            seen_b.add(sample["subject_b"])
    assert seen_a == {f"h{i}" for i in range(4)}
    assert seen_b == {f"d{i}" for i in range(3)}


def test_batches_depend_only_on_seed_and_step() -> None:
    full = list(SeededBatchSampler(37, 4, seed=5, start_step=0, num_steps=20))
    resumed = list(SeededBatchSampler(37, 4, seed=5, start_step=12, num_steps=8))
    assert resumed == full[12:]
    epoch = [key[0] for batch in full[:10] for key in batch][:37]
    assert sorted(epoch) == list(range(37))


def test_ranks_get_disjoint_shares_of_a_batch() -> None:
    rank0 = SeededBatchSampler(40, 4, seed=0, start_step=0, num_steps=5, rank=0, world_size=2)
    rank1 = SeededBatchSampler(40, 4, seed=0, start_step=0, num_steps=5, rank=1, world_size=2)
    for a, b in zip(rank0, rank1):
        assert not {k[0] for k in a} & {k[0] for k in b}


def test_subjects_of_different_sizes_batch_together(tmp_path: Path) -> None:
    root = tmp_path / "pre"
    write_preprocessed(root / "a", {"p0": "paired"}, "paired", shape=(20, 18, 16))
    write_preprocessed(root / "b", {"p1": "paired"}, "paired", shape=(24, 14, 16))
    manifest = {"version": 1, "mode": "paired", "subjects": []}
    import json
    import shutil

    for part in ("a", "b"):
        for record in json.loads((root / part / "manifest.json").read_text())["subjects"]:
            if record["status"] == "ok":
                shutil.move(str(root / part / record["subject"]), str(root / record["subject"]))
                manifest["subjects"].append(record)
    (root / "manifest.json").write_text(json.dumps(manifest))
    dataset = build_training_dataset(config(kind="2d"), root, ["p0", "p1"])
    shapes = {tuple(dataset[(i, 0)]["source"].shape) for i in range(len(dataset))}
    assert shapes == {(1, 24, 18)}
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=SeededBatchSampler(len(dataset), 8, 0, 0, 3))
    assert next(iter(loader))["source"].shape == (8, 1, 24, 18)
    padded = next(dataset[(i, 0)] for i in range(len(dataset)) if dataset[(i, 0)]["subject"] == "p1")
    assert torch.all(padded["source"][0, :, :2] == -1) and torch.all(padded["source"][0, :, -2:] == -1)

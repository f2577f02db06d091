"""Datasets: paired 2D / 2.5D / 3D samples, unpaired A/B samples, subject split, seeded batches."""

from medtrans.data.builder import build_training_dataset, channels, subjects_by_group
from medtrans.data.datasets import PairedDataset, SampleSource, UnpairedDataset
from medtrans.data.manifest import SubjectArrays, load_manifest, load_subject, usable_records
from medtrans.data.sampling import SeededBatchSampler
from medtrans.data.split import load_split, make_split, save_split
from medtrans.data.views import PatchView, SliceView, view_from_config

__all__ = [
    "PairedDataset", "PatchView", "SampleSource", "SeededBatchSampler", "SliceView", "SubjectArrays",
    "UnpairedDataset", "build_training_dataset", "channels", "load_manifest", "load_split", "load_subject",
    "make_split", "save_split", "subjects_by_group", "usable_records", "view_from_config",
]

"""Which scans to translate and where each result goes: one scan, a folder of scans, or a CSV manifest."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from medtrans.errors import MedtransError
from medtrans.infer.scan import Timing, translate_scan
from medtrans.infer.translator import Translator
from medtrans.io import is_volume_file, read_volume, write_dicom_series, write_volume
from medtrans.io.files import volume_suffix


@dataclass(frozen=True)
class Job:
    """One scan to translate: its subject name, input path and output path (file, or folder for DICOM)."""

    subject: str
    source: Path
    output: Path


def subject_name(path: Path) -> str:
    """A subject name from a file or folder name (suffixes such as .nii.gz removed)."""
    name = path.name
    suffix = volume_suffix(path)
    return name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name


def is_batch_folder(path: Path) -> bool:
    """True for a folder of scans (volume files or sub-folders), False for a single DICOM series folder."""
    return path.is_dir() and any(is_volume_file(p) or p.is_dir() for p in path.iterdir())


def manifest_inputs(csv_path: Path) -> list[tuple[str, Path]]:
    """(subject, scan path) rows of a CSV with columns subject and image (relative paths from the CSV)."""
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"subject", "image"} <= set(rows[0]):
        raise MedtransError(f"{csv_path}: a manifest needs the columns subject and image")
    return [(row["subject"], (csv_path.parent / row["image"]).resolve()) for row in rows]


def plan_jobs(source: Path, output: Path, dicom_output: bool = False) -> list[Job]:
    """Jobs for ``--input`` ``source`` and ``--output`` ``output``.

    A single scan writes to ``output`` itself: a volume file by its suffix, or a DICOM series folder
    when ``output`` has no volume suffix. A folder or CSV of scans writes ``<subject>.nii.gz`` (or
    ``<subject>/`` DICOM series with ``dicom_output``) into the ``output`` folder.
    """
    if not source.exists():
        raise MedtransError(f"{source}: input not found")
    if source.suffix.lower() == ".csv":
        pairs = manifest_inputs(source)
    elif is_batch_folder(source):
        pairs = [(subject_name(p), p) for p in sorted(source.iterdir()) if is_volume_file(p) or p.is_dir()]
    else:
        return [Job(subject_name(source), source, output)]
    if volume_suffix(output):
        raise MedtransError(f"{output}: with several inputs, --output must be a folder")
    return [Job(s, p, output / (s if dicom_output else f"{s}.nii.gz")) for s, p in pairs]


def check_outputs(jobs: list[Job]) -> None:
    """Refuse jobs whose output would overwrite or sit inside an input."""
    for job in jobs:
        source, output = job.source.resolve(), job.output.resolve()
        if output == source or source in output.parents:
            raise MedtransError(f"{job.output}: output would overwrite or go inside the input {job.source}")


def run_jobs(translator: Translator, jobs: list[Job], keep_patient_tags: bool = False,
             mask_outside_body: bool | None = None, progress: bool = True) -> Timing:
    """Translate every job's scan and write its output atomically; returns the summed timings."""
    check_outputs(jobs)
    timing = Timing()
    for job in tqdm(jobs, desc="infer", unit="scan", disable=not progress or len(jobs) < 2):
        scan = read_volume(job.source)
        synthetic = translate_scan(translator, scan, mask_outside_body, timing)
        if volume_suffix(job.output):
            write_volume(synthetic, job.output)
        else:
            identity = scan.meta.get("dicom_identity") if keep_patient_tags else None
            write_dicom_series(synthetic, job.output, modality=translator.target_modality.upper(),
                               series_description=f"medtrans synthetic {translator.target_modality.upper()}",
                               identity=identity, overwrite=True)
    return timing

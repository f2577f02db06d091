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
from medtrans.io.dicom import DICOM_SUFFIXES, has_dicom_preamble
from medtrans.io.files import volume_suffix


@dataclass(frozen=True)
class Job:
    """One scan to translate: its subject name, input path, output path (file, or folder for DICOM) and,
    for a DICOM folder holding several series, the SeriesInstanceUID to read."""

    subject: str
    source: Path
    output: Path
    series_uid: str | None = None


def subject_name(path: Path) -> str:
    """A subject name from a file or folder name (suffixes such as .nii.gz removed)."""
    name = path.name
    suffix = volume_suffix(path)
    return name[: -len(suffix)] if suffix and name.lower().endswith(suffix) else name


def folder_scans(path: Path) -> list[Path]:
    """The scans in a folder: volume files and sub-folders, without hidden entries.

    Hidden names are skipped because an interrupted write leaves its ``.tmp-*`` file there.
    """
    return [p for p in sorted(path.iterdir()) if not p.name.startswith(".") and (is_volume_file(p) or p.is_dir())]


def holds_dicom_files(folder: Path) -> bool:
    """True when DICOM files (by suffix or by the 'DICM' marker) sit directly in ``folder``."""
    return any(p.is_file() and not p.name.startswith(".")
               and (volume_suffix(p) in DICOM_SUFFIXES or has_dicom_preamble(p)) for p in folder.iterdir())


def is_batch_folder(path: Path) -> bool:
    """True for a folder of scans (volume files or sub-folders), False for a single DICOM series folder.

    A folder with DICOM files directly inside is one series, even when it also holds sub-folders
    (exports often add a notes or thumbnails folder beside the slices).
    """
    return path.is_dir() and not holds_dicom_files(path) and bool(folder_scans(path))


def check_subject_name(subject: str, where: str) -> None:
    """Refuse a subject name that cannot be an output file name (empty, hidden, or holding a path)."""
    if not subject or subject.startswith(".") or any(sep in subject for sep in ("/", "\\")):
        raise MedtransError(f"{where}: subject {subject!r} is not a plain name; output files are named after subjects")


def manifest_inputs(csv_path: Path) -> list[tuple[str, Path]]:
    """(subject, scan path) rows of a CSV with columns subject and image (relative paths from the CSV).

    Raises:
        MedtransError: missing columns, a subject name that is not a plain file name, or a scan
            that does not exist; the message names the CSV line.
    """
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"subject", "image"} <= set(rows[0]):
        raise MedtransError(f"{csv_path}: a manifest needs the columns subject and image")
    pairs = []
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path} line {line}"
        subject, image = (row["subject"] or "").strip(), (row["image"] or "").strip()
        check_subject_name(subject, where)
        if not image:
            raise MedtransError(f"{where}: subject {subject!r} has no image path")
        source = (csv_path.parent / image).resolve()
        if not source.exists():
            raise MedtransError(f"{where}: scan {source} of subject {subject!r} not found")
        pairs.append((subject, source))
    return pairs


def check_unique_subjects(pairs: list[tuple[str, Path]], source: Path) -> None:
    """Refuse two scans with one subject name: the second would overwrite the first one's output."""
    seen: dict[str, Path] = {}
    for subject, path in pairs:
        if subject in seen:
            raise MedtransError(f"{source}: two scans for subject {subject!r} ({seen[subject]} and {path}); "
                                "each output is named after its subject")
        seen[subject] = path


def plan_jobs(source: Path, output: Path, dicom_output: bool = False, series_uid: str | None = None) -> list[Job]:
    """Jobs for ``--input`` ``source`` and ``--output`` ``output``.

    A single scan writes to ``output`` itself: a volume file by its suffix, or a DICOM series folder
    when ``output`` has no volume suffix. A folder or CSV of scans writes ``<subject>.nii.gz`` (or
    ``<subject>/`` DICOM series with ``dicom_output``) into the ``output`` folder. ``series_uid``
    picks one series of a single DICOM folder that holds several.
    """
    if not source.exists():
        raise MedtransError(f"{source}: input not found")
    if source.suffix.lower() == ".csv":
        pairs = manifest_inputs(source)
    elif is_batch_folder(source):
        if output.resolve() == source.resolve() or source.resolve() in output.resolve().parents:
            raise MedtransError(f"{output}: --output may not be the input folder {source} or inside it; "
                                "results would mix with the scans")
        pairs = [(subject_name(p), p) for p in folder_scans(source)]
    else:
        return [Job(subject_name(source), source, output, series_uid)]
    if series_uid is not None:
        raise MedtransError(f"{source}: --series picks a series of one DICOM folder, not of several scans")
    if volume_suffix(output):
        raise MedtransError(f"{output}: with several inputs, --output must be a folder")
    check_unique_subjects(pairs, source)
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
        scan = read_volume(job.source, series_uid=job.series_uid)
        synthetic = translate_scan(translator, scan, mask_outside_body, timing)
        if volume_suffix(job.output):
            write_volume(synthetic, job.output)
        else:
            identity = scan.meta.get("dicom_identity") if keep_patient_tags else None
            write_dicom_series(synthetic, job.output, modality=translator.target_modality.upper(),
                               series_description=f"medtrans synthetic {translator.target_modality.upper()}",
                               identity=identity, overwrite=True)
    return timing

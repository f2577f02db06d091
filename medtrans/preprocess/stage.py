"""Run preprocessing over a cohort: skip unchanged subjects, use worker processes, split in shards.

Each subject's outputs go to ``<out>/<key>/`` (``key`` = subject ID, or ``a/<sid>``, ``b/<sid>``
for unpaired cohorts) and end with ``record.json``, written last and atomically: a record exists
only for a finished subject, and its ``input_hash`` (SHA-256 of the input files' bytes and the
settings) says what it was made from. A rerun skips subjects whose record is current; shards
(``shard=(k, n)``) and interrupted runs compose because ``manifest.json`` is rebuilt from the
record files after every run. The quality gates (body Dice, mutual-information outliers across
the cohort) are applied then too: a record says 'ok' or 'failed', the manifest adds 'flagged'.

Example:
    >>> summary = run_preprocess(cfg, Path("runs/demo/preprocessed"), workers=2)   # doctest: +SKIP
    >>> summary.counts                                                              # doctest: +SKIP
    {'ok': 9, 'flagged': 1, 'failed': 0, 'skipped': 0}
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from medtrans.config import Config, PreprocessConfig, config_to_dict
from medtrans.errors import MedtransError
from medtrans.io import write_text_atomic
from medtrans.preprocess.cohort import Subject, find_cohort, input_locations
from medtrans.preprocess.pipeline import process_pair, process_single

log = logging.getLogger("medtrans.preprocess")

MANIFEST_VERSION = 1
# Bump when the same inputs and settings would give different outputs, so old records go stale.
PIPELINE_VERSION = 1
RECORD_NAME = "record.json"
# Below this many registered pairs a cohort median says too little to call one an outlier.
MI_MIN_PAIRS = 4
HASH_CHUNK_BYTES = 1 << 20
# Settings that change neither the outputs nor the records (speed, and the quality gates, which
# are applied when the manifest is built): left out of the hash, so changing them redoes nothing.
UNHASHED_SETTINGS = ("workers", "min_body_dice", "mi_outlier_fraction")


@dataclass(frozen=True)
class Job:
    """Everything a worker needs for one subject (picklable)."""

    subject: Subject
    preprocess: PreprocessConfig
    seed: int
    out_dir: Path
    settings_hash: str


@dataclass(frozen=True)
class Outcome:
    """One subject's record and whether it was reused unchanged."""

    record: dict
    skipped: bool


@dataclass(frozen=True)
class Summary:
    """What a run did, and the manifest it left."""

    out_dir: Path
    outcomes: list[Outcome]
    manifest: dict

    @property
    def counts(self) -> dict[str, int]:
        """Subjects of this run by status in the manifest, plus how many were skipped as unchanged."""
        status = {(r["domain"], r["subject"]): r["status"] for r in self.manifest["subjects"]}
        counts = {"ok": 0, "flagged": 0, "failed": 0, "skipped": 0}
        for outcome in self.outcomes:
            counts[status.get((outcome.record["domain"], outcome.record["subject"]), outcome.record["status"])] += 1
            counts["skipped"] += outcome.skipped
        return counts


def settings_of(cfg: Config) -> dict:
    """The settings a subject's outputs depend on (preprocess section, seed, pipeline version)."""
    section = {k: v for k, v in config_to_dict(cfg)["preprocess"].items() if k not in UNHASHED_SETTINGS}
    return {"preprocess": section, "seed": cfg.seed, "pipeline_version": PIPELINE_VERSION}


def settings_hash_of(cfg: Config) -> str:
    """SHA-256 of `settings_of`: records made with other settings are stale."""
    return sha256_of(json.dumps(settings_of(cfg), sort_keys=True))


def sha256_of(data: bytes | str) -> str:
    """Hex SHA-256 of bytes or text."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def file_hashes(path: Path) -> Iterator[tuple[str, str]]:
    """(relative name, SHA-256) of a file, or of every file under a DICOM folder, in a fixed order."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest = hashlib.sha256()
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
        yield (file.relative_to(path).as_posix() if path.is_dir() else file.name), digest.hexdigest()


def input_hash(subject: Subject, settings_hash: str) -> str:
    """SHA-256 over the subject's input bytes, its domain/modality and the settings hash."""
    parts = {"settings": settings_hash, "domain": subject.domain, "modality": subject.modality,
             "inputs": {role: list(file_hashes(path)) for role, path in sorted(subject.inputs.items())}}
    return sha256_of(json.dumps(parts, sort_keys=True))


def input_fingerprint(cfg: Config) -> str:
    """A cheap fingerprint of the cohort's input files: names, sizes and modification times (not contents).

    For a pipeline deciding whether to run the stage at all; the stage itself compares contents.
    """
    _, subjects = find_cohort(cfg.data)
    entries = []
    for subject in sorted(subjects, key=lambda s: s.key):
        for role, path in sorted(subject.inputs.items()):
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            entries += [[subject.key, role, str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    return sha256_of(json.dumps(entries))


def record_path(out_dir: Path, subject: Subject) -> Path:
    """Where a subject's record lives."""
    return out_dir / subject.key / RECORD_NAME


def read_record(path: Path) -> Optional[dict]:
    """A record file's content, or None if it is missing or unreadable (then it is redone)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def record_files(record: dict) -> list[str]:
    """Relative paths of every output a record points to."""
    files = list((record.get("images") or {}).values())
    files += [p for p in (record.get("mask"), record.get("mr_on_ct")) if p]
    registration = record.get("registration") or {}
    if registration.get("transform"):
        files.append(registration["transform"])
    return files


def is_current(record: Optional[dict], expected_hash: str, out_dir: Path) -> bool:
    """True when a record was made from the same inputs and settings and all its outputs exist."""
    return (record is not None and record.get("input_hash") == expected_hash
            and record.get("status") in ("ok", "flagged")
            and all((out_dir / rel).is_file() for rel in record_files(record)))


def base_record(subject: Subject, input_digest: str, settings_hash: str) -> dict:
    """Record fields known before processing."""
    return {"subject": subject.subject, "domain": subject.domain, "status": "failed", "reason": None,
            "input_hash": input_digest, "settings_hash": settings_hash,
            "inputs": {role: str(path.resolve()) for role, path in subject.inputs.items()}}


def process(job: Job) -> Outcome:
    """Reuse a subject's current record, or preprocess it and write a new one (last)."""
    subject, out_dir = job.subject, job.out_dir
    digest = input_hash(subject, job.settings_hash)
    path = record_path(out_dir, subject)
    previous = read_record(path)
    if is_current(previous, digest, out_dir):
        return Outcome(previous, skipped=True)
    if path.exists():
        path.unlink()  # outputs are about to change; no record may vouch for them meanwhile
    record = base_record(subject, digest, job.settings_hash)
    try:
        if subject.domain == "paired":
            fields = process_pair(subject, job.preprocess, job.seed, out_dir)
        else:
            fields = process_single(subject, job.preprocess, out_dir)
    except Exception as err:  # one bad subject must not stop a cohort; the record says why
        record["reason"] = f"{type(err).__name__}: {err}" if not isinstance(err, MedtransError) else str(err)
    else:
        record.update(fields, status="ok")
    write_text_atomic(path, json.dumps(record, indent=1))
    return Outcome(record, skipped=False)


def init_worker(threads: int) -> None:
    """Give each worker process its share of the CPU cores for ITK filters."""
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' (1 <= K <= N) as a tuple; e.g. '2/8' is the second of eight shards."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise MedtransError(f"--shard: expected K/N such as 1/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise MedtransError(f"--shard: need 1 <= K <= N, got {text!r}")
    return k, n


def shard_of(subjects: list[Subject], shard: Optional[tuple[int, int]]) -> list[Subject]:
    """The subjects of shard K of N: every N-th subject (in key order) starting at the K-th."""
    ordered = sorted(subjects, key=lambda s: s.key)
    if shard is None:
        return ordered
    k, n = shard
    return ordered[k - 1::n]


def check_output_location(out_dir: Path, inputs: list[Path]) -> None:
    """Refuse an output folder equal to or inside an input folder."""
    out = out_dir.resolve()
    for folder in inputs:
        if out == folder or folder in out.parents:
            raise MedtransError(f"output folder {out} is inside the input folder {folder}; choose another (--out)")


def build_manifest(out_dir: Path, mode: str, cfg: Config, subjects: list[Subject], settings_hash: str) -> dict:
    """The manifest from the record files of the whole cohort (every shard) made with these settings."""
    records, missing = [], []
    for subject in sorted(subjects, key=lambda s: s.key):
        record = read_record(record_path(out_dir, subject))
        if record is not None and record.get("settings_hash") == settings_hash:
            records.append(record)
        else:
            missing.append(subject.key)
    flag_poor_registrations(records, cfg.preprocess)
    return {"version": MANIFEST_VERSION, "mode": mode, "settings": config_to_dict(cfg)["preprocess"],
            "subjects": records, "missing": missing}


def quality_problem(record: dict, cfg: PreprocessConfig) -> Optional[str]:
    """Why a processed pair's record should be flagged (body-mask Dice after registration too low), else None.

    Another subject's MR of a similar head still reaches Dice ~0.95-0.97; the stage catches it
    across the cohort by its weak mutual information (`flag_registration_outliers`).
    """
    if record.get("patient_mismatch"):
        return "the MR and CT DICOM headers carry different PatientIDs: these are scans of two different patients"
    registration = record.get("registration")
    if not registration or registration["dice_after"] >= cfg.min_body_dice:
        return None
    return (f"body-mask Dice after registration {registration['dice_after']:.3f} < min_body_dice "
            f"{cfg.min_body_dice:g} (before: {registration['dice_before']:.3f}): wrong MR for this CT, "
            "or a registration failure")


def flag_poor_registrations(records: list[dict], cfg: PreprocessConfig) -> None:
    """Mark pairs unfit for training as flagged, in place: low body Dice, or mutual information outliers."""
    for record in records:
        problem = quality_problem(record, cfg) if record["status"] == "ok" else None
        if problem:
            record.update(status="flagged", reason=problem)
    flag_registration_outliers(records, cfg.mi_outlier_fraction)


def flag_registration_outliers(records: list[dict], fraction: float) -> None:
    """Flag pairs whose mutual information after registration is far below the cohort's typical pair.

    Body-mask Dice cannot tell an MR of another subject with a similar head from the right one
    (after rigid registration both overlap at ~0.97), but such a pair's anatomy does not line up
    inside the body, so its Mattes metric stays much weaker. The scale of mutual information
    depends on scanners and protocols, so the threshold is relative: a pair is flagged when its
    mutual information is below ``fraction`` (``preprocess.mi_outlier_fraction``) of the cohort
    median (needs `MI_MIN_PAIRS` pairs; 0 turns the check off). On the sample heads the right MR
    reaches 0.8-1.0 nats and another head's 0.4-0.55.
    """
    metrics = {r["subject"]: r["registration"]["metric_after"] for r in records
               if r["status"] == "ok" and (r.get("registration") or {}).get("metric_after") is not None}
    if len(metrics) < MI_MIN_PAIRS:
        return
    typical = float(np.median(list(metrics.values())))
    for record in records:
        value = metrics.get(record["subject"])
        if value is not None and typical < 0 and value > fraction * typical:
            record["status"] = "flagged"
            record["reason"] = (f"mutual information after registration {-value:.3f} is below "
                                f"{fraction:g} x the cohort's median {-typical:.3f}: the MR and CT "
                                f"do not show the same anatomy (another subject's scan?)")


def run_jobs(jobs: list[Job], workers: int, progress: bool) -> Iterator[Outcome]:
    """Process jobs in this process (workers=1) or in a pool of processes, yielding as they finish."""
    bar = tqdm(total=len(jobs), desc="preprocess", unit="subject", disable=not progress)
    with bar:
        if workers <= 1:
            for job in jobs:
                yield process(job)
                bar.update()
            return
        threads = max(1, (os.cpu_count() or 1) // workers)
        # 'spawn': ITK's thread pool does not survive fork() reliably.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker,
                                                    initargs=(threads,)) as pool:
            for future in concurrent.futures.as_completed([pool.submit(process, job) for job in jobs]):
                yield future.result()
                bar.update()


def report(record: dict) -> None:
    """One loud line for a flagged or failed subject."""
    name = record["subject"] if record["domain"] == "paired" else f"{record['domain']}/{record['subject']}"
    if record["status"] == "flagged":
        log.warning("preprocess: %s FLAGGED, left out of training: %s", name, record["reason"])
    elif record["status"] == "failed":
        log.error("preprocess: %s FAILED: %s", name, record["reason"])


def summarize(summary: Summary) -> None:
    """Log the totals, listing flagged, failed and missing subjects of the whole manifest."""
    counts = summary.counts
    log.info("preprocess: %d subject(s) this run: %d ok, %d flagged, %d failed (%d unchanged, skipped)",
             len(summary.outcomes), counts["ok"], counts["flagged"], counts["failed"], counts["skipped"])
    subjects = summary.manifest["subjects"]
    for status in ("flagged", "failed"):
        names = [r["subject"] for r in subjects if r["status"] == status]
        if names:
            log.warning("preprocess: %d subject(s) %s and left out of training: %s", len(names), status,
                        ", ".join(names))
    if summary.manifest["missing"]:
        log.warning("preprocess: %d subject(s) not preprocessed yet (other shards?): %s",
                    len(summary.manifest["missing"]), ", ".join(summary.manifest["missing"]))


def run_preprocess(cfg: Config, out_dir: Path, workers: Optional[int] = None,
                   shard: Optional[tuple[int, int]] = None, progress: bool = True) -> Summary:
    """Preprocess the cohort of ``cfg.data`` (or one shard of it) into ``out_dir`` and write the manifest.

    Args:
        cfg: the study config, with absolute data paths (`medtrans.config.resolve_paths`).
        out_dir: the preprocessed folder; must not be inside an input folder.
        workers: subjects processed in parallel (processes); default ``cfg.preprocess.workers``.
        shard: ``(k, n)`` to process only shard k of n (1-based).
        progress: show a tqdm progress bar.

    Returns:
        The outcome of every subject of this run and the merged manifest.
    """
    mode, subjects = find_cohort(cfg.data)
    check_output_location(out_dir, input_locations(cfg.data, subjects))
    out_dir.mkdir(parents=True, exist_ok=True)
    settings_hash = settings_hash_of(cfg)
    jobs = [Job(s, cfg.preprocess, cfg.seed, out_dir, settings_hash) for s in shard_of(subjects, shard)]
    if not all(is_current(read_record(record_path(out_dir, j.subject)), input_hash(j.subject, settings_hash), out_dir)
               for j in jobs):
        # Subjects are about to change: if this run is interrupted, no manifest may vouch for a
        # mix of old and new outputs. It is written again, complete, at the end.
        (out_dir / "manifest.json").unlink(missing_ok=True)
    outcomes = list(run_jobs(jobs, workers or cfg.preprocess.workers, progress))
    manifest = build_manifest(out_dir, mode, cfg, subjects, settings_hash)
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1))
    # The manifest's records, not the workers': cohort-wide checks may have flagged more.
    in_this_run = {(o.record["domain"], o.record["subject"]) for o in outcomes}
    for record in manifest["subjects"]:
        if (record["domain"], record["subject"]) in in_this_run:
            report(record)
    summary = Summary(out_dir, outcomes, manifest)
    summarize(summary)
    return summary


def rebuild_manifest(cfg: Config, out_dir: Path) -> dict:
    """Rewrite manifest.json from the record files alone (after shards finished concurrently)."""
    mode, subjects = find_cohort(cfg.data)
    settings_hash = settings_hash_of(cfg)
    manifest = build_manifest(out_dir, mode, cfg, subjects, settings_hash)
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


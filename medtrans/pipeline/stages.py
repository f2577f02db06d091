"""The study pipeline: preprocess -> train -> infer (test subjects) -> evaluate -> report.

Each stage records, in ``<run>/stages.json``, a hash of its inputs and settings when it completes;
a rerun skips a stage whose hash is unchanged and whose outputs exist, so a crashed or extended
study resumes where it stopped (training resumes from ``last.pt``). ``force_from`` reruns a stage
and every stage after it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import torch

from medtrans.config import Config, config_to_dict
from medtrans.data import load_manifest, load_split, usable_records
from medtrans.data.builder import load_subjects
from medtrans.errors import MedtransError
from medtrans.io import write_text_atomic

STAGES = ("preprocess", "train", "infer", "evaluate", "report")
# Settings that change how long training runs or how often it reports, not what it learns: a
# change to these extends or resumes a run instead of invalidating it.
TRAIN_SCHEDULE_KEYS = ("steps", "val_every", "checkpoint_every", "log_every", "device")


def digest(*parts: Any) -> str:
    """sha256 of JSON-encoded parts (sorted keys)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a folder's files in name order."""
    sha = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        sha.update(file.name.encode())
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                sha.update(chunk)
    return sha.hexdigest()


class StageLog:
    """``stages.json``: per stage, the hash it ran with and whether it completed."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "stages.json"
        self.records: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def matches(self, stage: str, stage_hash: str) -> bool:
        record = self.records.get(stage, {})
        return record.get("hash") == stage_hash and record.get("done", False)

    def mark(self, stage: str, stage_hash: str, done: bool) -> None:
        self.records[stage] = {"hash": stage_hash, "done": done}
        write_text_atomic(self.path, json.dumps(self.records, indent=2, sort_keys=True) + "\n")

    def forget(self, stages: tuple[str, ...]) -> None:
        for stage in stages:
            self.records.pop(stage, None)
        write_text_atomic(self.path, json.dumps(self.records, indent=2, sort_keys=True) + "\n")


def say(message: str) -> None:
    """Stage announcements go to stdout, so a researcher sees where the study stands."""
    print(f"[medtrans] {message}", flush=True)


@dataclasses.dataclass
class Study:
    """One run folder's stages; ``log`` remembers what completed."""

    cfg: Config
    force_from: str | None = None

    def __post_init__(self) -> None:
        self.run_dir = self.cfg.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = StageLog(self.run_dir)
        if self.force_from is not None:
            self.log.forget(STAGES[STAGES.index(self.force_from):])

    def forced(self, stage: str) -> bool:
        return self.force_from is not None and STAGES.index(stage) >= STAGES.index(self.force_from)

    def run_stage(self, stage: str, stage_hash: str, outputs_exist: Callable[[], bool], work: Callable[[], None]) -> None:
        """Run ``work`` unless the stage completed with this hash and its outputs are there."""
        if self.log.matches(stage, stage_hash) and outputs_exist():
            say(f"{stage}: up to date, skipped")
            return
        say(f"{stage}: running")
        self.log.mark(stage, stage_hash, done=False)
        work()
        self.log.mark(stage, stage_hash, done=True)

    # ---- preprocess -------------------------------------------------------------------------
    def preprocess(self) -> None:
        from medtrans.preprocess.stage import input_fingerprint, run_preprocess

        out = self.cfg.preprocessed_path
        stage_hash = digest(config_to_dict(self.cfg)["data"], config_to_dict(self.cfg)["preprocess"],
                            input_fingerprint(self.cfg))
        self.run_stage("preprocess", stage_hash, lambda: (out / "manifest.json").is_file(),
                       lambda: run_preprocess(self.cfg, out, workers=self.cfg.preprocess.workers))

    # ---- train ------------------------------------------------------------------------------
    def train_hash(self) -> str:
        values = config_to_dict(self.cfg)
        train = {k: v for k, v in values["train"].items() if k not in TRAIN_SCHEDULE_KEYS}
        manifest = file_digest(self.cfg.preprocessed_path / "manifest.json")
        return digest(manifest, values["data"], values["dataset"], values["model"], train, self.cfg.seed)

    def checkpoint(self) -> Path:
        best = self.run_dir / "checkpoints" / "best.pt"
        return best if best.is_file() else self.run_dir / "checkpoints" / "last.pt"

    def train(self) -> None:
        from medtrans.train import load_checkpoint, train

        stage_hash = self.train_hash()
        last = self.run_dir / "checkpoints" / "last.pt"
        recorded = self.log.records.get("train", {}).get("hash")
        if self.forced("train") or (recorded is not None and recorded != stage_hash):
            if recorded is not None and recorded != stage_hash and not self.forced("train"):
                raise MedtransError(
                    f"{self.run_dir}: data, model or training settings changed since this run was trained; "
                    f"rerun with --from train to train again (its checkpoints are replaced), or use a new name")
            for stale in ("checkpoints", "logs", "split.json"):
                path = self.run_dir / stale
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        step = load_checkpoint(last)["step"] if last.is_file() else 0
        if step >= self.cfg.train.steps:
            say(f"train: up to date at step {step}, skipped")
            self.log.mark("train", stage_hash, done=True)
            return
        say(f"train: {'resuming at step ' + str(step) if step else 'starting'} ({self.cfg.train.steps} steps)")
        self.log.mark("train", stage_hash, done=False)
        train(self.cfg, resume=step > 0)
        self.log.mark("train", stage_hash, done=True)

    # ---- infer ------------------------------------------------------------------------------
    def test_jobs(self) -> list:
        """Inference jobs for the test subjects: MR on the CT grid (paired) or domain-A scans (unpaired)."""
        from medtrans.infer import Job

        manifest = load_manifest(self.cfg.preprocessed_path)
        test = set(load_split(self.run_dir / "split.json")["test"])
        jobs = []
        for record in usable_records(manifest):
            if record["subject"] not in test:
                continue
            if manifest["mode"] == "paired":
                source = self.cfg.preprocessed_path / record["mr_on_ct"]
            elif record["domain"] == "a":
                source = Path(record["inputs"]["image"])
            else:
                continue
            jobs.append(Job(record["subject"], source, self.run_dir / "predictions" / f"{record['subject']}.nii.gz"))
        return jobs

    def infer(self) -> None:
        from medtrans.device import resolve_device
        from medtrans.infer import Translator, run_jobs

        jobs = self.test_jobs()
        stage_hash = digest(file_digest(self.checkpoint()), config_to_dict(self.cfg)["infer"],
                            [(j.subject, str(j.source)) for j in jobs])

        def work() -> None:
            translator = Translator.from_checkpoint(self.checkpoint(), resolve_device(self.cfg.infer.device))
            run_jobs(translator, jobs)

        self.run_stage("infer", stage_hash, lambda: all(j.output.is_file() for j in jobs), work)

    # ---- evaluate ---------------------------------------------------------------------------
    def evaluate(self) -> None:
        manifest = load_manifest(self.cfg.preprocessed_path)
        out = self.run_dir / "evaluation"
        predictions = self.run_dir / "predictions"
        stage_hash = digest(file_digest(predictions), config_to_dict(self.cfg)["evaluate"])
        if manifest["mode"] == "paired":
            work = lambda: self.evaluate_paired(manifest, out)  # noqa: E731
        else:
            from medtrans.evaluate.unpaired import evaluate_unpaired_run

            work = lambda: evaluate_unpaired_run(self.run_dir, self.checkpoint(), out, self.cfg.evaluate.device)  # noqa: E731
        self.run_stage("evaluate", stage_hash, lambda: (out / "summary.json").is_file(), work)

    def evaluate_paired(self, manifest: dict, out: Path) -> None:
        """Metrics of the synthetic CTs against the real CTs, and of the lookup baseline the same way."""
        from medtrans.device import resolve_device
        from medtrans.evaluate.baseline import fit_lookup
        from medtrans.evaluate.stage import evaluate_pairs
        from medtrans.infer import Translator, run_jobs

        device = resolve_device(self.cfg.evaluate.device)
        records = {r["subject"]: r for r in usable_records(manifest)}
        jobs = self.test_jobs()
        real_ct = {j.subject: Path(records[j.subject]["inputs"]["ct"]) for j in jobs}
        evaluate_pairs([(j.subject, j.output, real_ct[j.subject], None) for j in jobs], out, str(device))
        split = load_split(self.run_dir / "split.json")
        lookup = fit_lookup(load_subjects(self.cfg.preprocessed_path, manifest, split["train"]))
        baseline = Translator(lookup, self.cfg, "mr", "ct", torch.device("cpu"))
        baseline_jobs = [dataclasses.replace(j, output=out / "baseline" / "predictions" / j.output.name) for j in jobs]
        run_jobs(baseline, baseline_jobs, progress=False)
        evaluate_pairs([(j.subject, j.output, real_ct[j.subject], None) for j in baseline_jobs],
                       out / "baseline", str(device))

    # ---- report -----------------------------------------------------------------------------
    def report(self) -> Path:
        from medtrans.report import build_report

        say("report: building")
        path = build_report(self.run_dir)
        self.log.mark("report", digest(str(path)), done=True)
        return path

    def run(self, with_preprocess: bool = True) -> Path:
        """All stages in order; returns the report's path."""
        if with_preprocess:
            self.preprocess()
        self.train()
        self.infer()
        self.evaluate()
        return self.report()

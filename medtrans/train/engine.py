"""The training engine: one loop for every recipe, with checkpoints, resume, validation, logging and DDP.

Usage: ``train(load_config("study.yaml"))`` or ``medtrans train study.yaml``; under ``torchrun`` each
process trains its share of every batch and rank 0 alone writes.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from tqdm import tqdm

from medtrans.config import Config, config_to_dict
from medtrans.data import SeededBatchSampler, build_training_dataset, channels, load_manifest, make_split, save_split
from medtrans.data.builder import subjects_by_group
from medtrans.data.split import load_split
from medtrans.data.views import AXIS_INDEX, view_from_config
from medtrans.device import resolve_device
from medtrans.errors import MedtransError
from medtrans.io import atomic_path
from medtrans.models.apply import translate_volume
from medtrans.precision import autocast_dtype
from medtrans.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from medtrans.train.recipe import Recipe
from medtrans.train.run_folder import write_run_records
from medtrans.train.step import StepContext, broadcast_weights
from medtrans.train.validate import cycle_metrics, paired_metrics, validation_subjects


class TrainingDiverged(MedtransError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


def recipe_class(name: str) -> type[Recipe]:
    """The recipe class for ``train.recipe``."""
    from medtrans.train.cyclegan import CycleGANRecipe
    from medtrans.train.pix2pix import Pix2PixRecipe

    return {"pix2pix": Pix2PixRecipe, "cyclegan": CycleGANRecipe}[name]


def distributed_setup(device_name: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group torchrun describes (gloo on CPU, nccl on CUDA)."""
    # torchrun passes the job layout through these variables; they are its interface, not our config.
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world_size, device


def checkpoint_dir(cfg: Config) -> Path:
    return cfg.run_dir / "checkpoints"


def ensure_split(cfg: Config, manifest: dict, rank: int) -> dict[str, list[str]]:
    """The run's subject split: reused from split.json when present, else made and saved (rank 0)."""
    path = cfg.run_dir / "split.json"
    if path.is_file():
        return load_split(path)
    split_sets = make_split(subjects_by_group(manifest), cfg.dataset.split, cfg.seed)
    if rank == 0:
        save_split(split_sets, path)
    return split_sets


class CsvLog:
    """Append-only metrics.csv; on resume rows after the resumed step are dropped."""

    def __init__(self, path: Path, start_step: int) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        if path.is_file() and start_step > 0:
            with path.open() as fh:
                self.rows = [row for row in csv.DictReader(fh) if int(row["step"]) <= start_step]

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        columns = list(dict.fromkeys(k for r in self.rows for k in r))
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)


class StopFlag:
    """First Ctrl-C asks the loop to save and stop after the current step; a second one aborts at once."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> "StopFlag":
        try:
            self.previous = signal.signal(signal.SIGINT, self.handle)
        except ValueError:  # not the main thread: leave SIGINT alone
            self.previous = None
        return self

    def handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        tqdm.write("Stopping after this step and saving a checkpoint (Ctrl-C again to abort now)")

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


class Trainer:
    """Runs a recipe for ``train.steps`` steps, validating and checkpointing as configured."""

    def __init__(self, cfg: Config, resume: bool = False) -> None:
        self.cfg = cfg
        self.rank, self.world_size, self.device = distributed_setup(cfg.train.device)
        self.preprocessed_dir = cfg.preprocessed_path
        self.manifest = load_manifest(self.preprocessed_dir)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = not cfg.train.deterministic
        # TF32 would change results between GPU generations; GAN training gains little from it.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.manual_seed(cfg.seed + self.rank)
        np.random.seed(cfg.seed + self.rank)
        self.split = ensure_split(cfg, self.manifest, self.rank)
        self.dataset = build_training_dataset(cfg, self.preprocessed_dir, self.split["train"])
        self.view = view_from_config(cfg.dataset)
        in_channels, out_channels = channels(cfg)
        image_size = tuple(next(iter(self.dataset[(0, 0)].values())).shape[1:])
        self.ctx = StepContext(self.device, autocast_dtype(self.device, cfg.train.amp), cfg.train.channels_last,
                               self.world_size)
        self.recipe = recipe_class(cfg.train.recipe)(cfg, self.ctx, self.view.spatial_dims, in_channels,
                                                    out_channels, image_size)
        self.val_subjects = validation_subjects(self.preprocessed_dir, self.manifest, self.split["val"])
        self.step = 0
        self.best = math.inf
        self.load_or_refuse(resume)
        if self.world_size > 1:
            broadcast_weights(self.recipe.networks.values())

    @property
    def selection_metric(self) -> str:
        return "val_mae" if self.manifest["mode"] == "paired" else "val_cycle_mae"

    def load_or_refuse(self, resume: bool) -> None:
        """Restore last.pt when resuming; refuse to overwrite an existing run otherwise."""
        last = checkpoint_dir(self.cfg) / "last.pt"
        if not resume:
            if last.exists():
                raise MedtransError(f"{self.cfg.run_dir}: this run already has checkpoints; "
                                    f"resume it with --resume or choose another name")
            return
        payload = load_checkpoint(last)
        if payload["network_args"] != self.recipe.network_args:
            raise MedtransError(f"{last}: checkpoint networks differ from the config's; cannot resume")
        self.recipe.load_state(payload)
        set_rng_state(payload["rng"])
        self.step = int(payload["step"])
        self.best = float(payload.get("best", math.inf))

    def translate_fn(self, name: str):
        """A volume -> volume function applying network ``name`` the way inference does."""
        cfg = self.cfg
        net = self.recipe.networks[name]
        context = getattr(self.view, "context", 0)

        def translate(volume: np.ndarray) -> np.ndarray:
            return translate_volume(net, volume, self.view.spatial_dims, self.device,
                                    axis=AXIS_INDEX[cfg.dataset.axis], context=context,
                                    patch_size=cfg.dataset.patch_size, batch_size=cfg.infer.batch_size,
                                    overlap=cfg.infer.overlap, amp_dtype=self.ctx.amp_dtype,
                                    channels_last=self.ctx.channels_last)

        return translate

    def validate(self) -> dict[str, float]:
        """Validation metrics on the whole validation volumes (empty when there are none)."""
        if not self.val_subjects:
            return {}
        if self.manifest["mode"] == "paired":
            metrics = paired_metrics(self.translate_fn(self.recipe.translator), self.val_subjects, str(self.device))
        else:
            metrics = cycle_metrics(self.translate_fn("G_AB"), self.translate_fn("G_BA"), self.val_subjects)
        self.recipe.train()
        return metrics

    def save(self, name: str, metrics: dict[str, float]) -> None:
        """Write checkpoints/<name> (rank 0 only)."""
        if self.rank != 0:
            return
        payload = {"step": self.step, "config": config_to_dict(self.cfg), "rng": rng_state(),
                   "best": self.best, "metrics": metrics, **self.recipe.state()}
        save_checkpoint(payload, checkpoint_dir(self.cfg) / name)

    def loader(self) -> DataLoader:
        """Batches for the remaining steps; the sampler starts at the current step."""
        sampler = SeededBatchSampler(len(self.dataset), self.cfg.train.batch_size, self.cfg.seed, self.step,
                                     self.cfg.train.steps - self.step, self.rank, self.world_size)
        workers = self.cfg.dataset.num_workers
        # A private generator: the loader must not draw from the global RNG, or a resumed run's
        # dropout and pool draws would shift against an uninterrupted run.
        return DataLoader(self.dataset, batch_sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", persistent_workers=False,
                          generator=torch.Generator().manual_seed(self.cfg.seed))

    def loop(self, progress: tqdm, writer: Any, log: CsvLog) -> bool:
        """The steps from the current one to ``train.steps``; True when Ctrl-C stopped it early (after saving)."""
        cfg = self.cfg.train
        started = time.perf_counter()
        metrics: dict[str, float] = {}
        with StopFlag() as stop:
            for batch in self.loader():
                losses = self.recipe.train_step(batch)
                self.step += 1
                values = {k: float(v) for k, v in losses.items()}
                if not all(math.isfinite(v) for v in values.values()):
                    raise TrainingDiverged(
                        f"loss became NaN/Inf at step {self.step} ({values}); training stopped. The last good "
                        f"checkpoint is {checkpoint_dir(self.cfg) / 'last.pt'}; lower train.lr or check the data")
                progress.update(1)
                progress.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
                last_step = self.step == cfg.steps
                if self.step % cfg.log_every == 0 or last_step:
                    row = {"step": self.step, **values, "lr": self.recipe.optimizers[next(iter(self.recipe.optimizers))].param_groups[0]["lr"],
                           "seconds": round(time.perf_counter() - started, 3)}
                    if self.rank == 0:
                        log.append(row)
                        for key, value in row.items():
                            if key != "step":
                                writer.add_scalar(f"train/{key}", value, self.step)
                if self.step % cfg.val_every == 0 or last_step:
                    metrics = self.validate() if self.rank == 0 else {}
                    if metrics:
                        tqdm.write(f"step {self.step}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                        log.append({"step": self.step, **metrics})
                        for key, value in metrics.items():
                            writer.add_scalar(f"val/{key}", value, self.step)
                        if metrics[self.selection_metric] < self.best:
                            self.best = metrics[self.selection_metric]
                            self.save("best.pt", metrics)
                if self.step % cfg.checkpoint_every == 0 or last_step or stop.requested:
                    self.save("last.pt", metrics)
                if stop.requested:
                    break
        return stop.requested

    def run(self) -> Path:
        """Train to ``train.steps``; returns the path of the best (else last) checkpoint."""
        cfg = self.cfg.train
        writer = None
        log = CsvLog(self.cfg.run_dir / "logs" / "metrics.csv", self.step)
        if self.rank == 0:
            write_run_records(self.cfg, self.device)
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.cfg.run_dir / "logs"), purge_step=self.step + 1)
        self.recipe.train()
        progress = tqdm(total=cfg.steps, initial=self.step, desc=f"train {self.cfg.name}", unit="step",
                        disable=self.rank != 0, dynamic_ncols=True)
        # Closed on every exit (error, Ctrl-C, NaN stop), so the bar ends its line before the CLI's message.
        try:
            stopped = self.loop(progress, writer, log)
        finally:
            progress.close()
            if writer is not None:
                writer.close()
        if stopped:
            raise KeyboardInterrupt
        best = checkpoint_dir(self.cfg) / "best.pt"
        return best if best.exists() else checkpoint_dir(self.cfg) / "last.pt"


def train(cfg: Config, resume: bool = False) -> Path:
    """Train the model ``cfg`` describes in its run folder; returns the checkpoint to use."""
    return Trainer(cfg, resume).run()

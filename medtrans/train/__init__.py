"""Training: one engine (loop, checkpoints, resume, logging, DDP) and two recipes (pix2pix, CycleGAN)."""

from medtrans.train.checkpoint import load_checkpoint, save_checkpoint
from medtrans.train.engine import Trainer, TrainingDiverged, train

__all__ = ["Trainer", "TrainingDiverged", "load_checkpoint", "save_checkpoint", "train"]

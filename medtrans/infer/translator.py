"""A trained generator plus everything needed to apply it to a scan, rebuilt from a checkpoint alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from medtrans.config import Config, config_from_dict
from medtrans.data.views import AXIS_INDEX, view_from_config
from medtrans.errors import CheckpointError, MedtransError
from medtrans.models import build_network
from medtrans.precision import autocast_dtype
from medtrans.train.checkpoint import load_checkpoint


@dataclass
class Translator:
    """A generator and the settings that replay the run's preprocessing around it.

    Attributes:
        generator: maps normalized source images to normalized target images.
        cfg: the run's resolved config (preprocess, dataset and infer sections are used).
        source_modality / target_modality: "mr" or "ct"; CT outputs are written in HU.
        device: where the generator runs.
        amp_dtype: autocast dtype for the forward pass, None for float32.
    """

    generator: nn.Module
    cfg: Config
    source_modality: str
    target_modality: str
    device: torch.device
    amp_dtype: torch.dtype | None = None

    @property
    def view_settings(self) -> dict:
        """Keyword arguments of `translate_volume` for this run's dataset kind."""
        dataset = self.cfg.dataset
        view = view_from_config(dataset)
        return {"spatial_dims": view.spatial_dims, "axis": AXIS_INDEX[dataset.axis],
                "context": getattr(view, "context", 0), "patch_size": dataset.patch_size,
                "batch_size": self.cfg.infer.batch_size, "overlap": self.cfg.infer.overlap,
                "channels_last": self.cfg.train.channels_last and view.spatial_dims == 2}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: torch.device, direction: str = "ab",
                        amp: str | None = None) -> "Translator":
        """Rebuild from a checkpoint; ``direction`` "ba" picks CycleGAN's B -> A generator."""
        payload = load_checkpoint(path, map_location="cpu")
        try:
            cfg = config_from_dict(payload["config"], source=f"{path} (stored config)")
            name = payload["translator"]
            if direction == "ba":
                if "G_BA" not in payload["networks"]:
                    raise MedtransError(f"{path}: --direction ba needs a CycleGAN checkpoint (it has no G_BA)")
                name = "G_BA"
            generator = build_network(payload["network_args"][name])
            generator.load_state_dict(payload["networks"][name])
        except KeyError as err:
            raise CheckpointError(f"{path}: checkpoint lacks {err}; it was not written by `medtrans train`") from None
        except RuntimeError as err:
            raise CheckpointError(f"{path}: weights do not fit the stored architecture: {str(err)[:300]}") from None
        modalities = ("mr", "ct") if cfg.data.paired else (cfg.data.modality_a, cfg.data.modality_b)
        if direction == "ba":
            modalities = modalities[::-1]
        generator = generator.to(device).eval()
        if cfg.train.channels_last and payload["network_args"][name]["spatial_dims"] == 2:
            generator = generator.to(memory_format=torch.channels_last)
        return cls(generator, cfg, modalities[0], modalities[1], device,
                   autocast_dtype(device, amp or cfg.train.amp))

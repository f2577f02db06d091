"""What the engine asks of a training recipe (pix2pix, CycleGAN): networks, optimizers, one step."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medtrans.config import Config
from medtrans.models import build_network
from medtrans.train.step import StepContext, adam, linear_decay


class Recipe:
    """Base of the recipes: holds networks, optimizers and LR schedulers, and their (de)serialisation.

    Subclasses build ``self.network_args`` (name -> init args), call `_build`, and implement
    `train_step` and the name of the network used for validation and inference (``translator``).
    """

    translator: str = "G"

    def __init__(self, cfg: Config, ctx: StepContext, network_args: dict[str, dict[str, Any]],
                 optimizer_groups: dict[str, list[str]]) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.network_args = network_args
        self.networks: dict[str, nn.Module] = {}
        for name, args in network_args.items():
            net = build_network(args).to(ctx.device)
            if ctx.channels_last and args["spatial_dims"] == 2:
                net = net.to(memory_format=torch.channels_last)
            self.networks[name] = net
        t = cfg.train
        self.optimizers = {
            group: adam([p for n in names for p in self.networks[n].parameters()], t.lr, (t.beta1, t.beta2))
            for group, names in optimizer_groups.items()
        }
        self.schedulers = {
            group: torch.optim.lr_scheduler.LambdaLR(opt, linear_decay(t.steps, t.decay_start))
            for group, opt in self.optimizers.items()
        }

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One optimisation step on ``batch``; returns detached scalar losses."""
        raise NotImplementedError

    def end_step(self) -> None:
        """Advance the learning-rate schedules after a step."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    def train(self) -> None:
        """Put every network in training mode."""
        for net in self.networks.values():
            net.train()

    def extra_state(self) -> dict[str, Any]:
        """Recipe state beyond networks and optimizers (image pools), as tensors."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `extra_state` returned."""

    def state(self) -> dict[str, Any]:
        """Checkpoint fields: networks, their init args, optimizers, schedulers, extra state."""
        return {
            "networks": {name: net.state_dict() for name, net in self.networks.items()},
            "network_args": self.network_args,
            "translator": self.translator,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scaler": self.ctx.scaler.state_dict(),
            "extra": self.extra_state(),
        }

    def load_state(self, payload: dict[str, Any]) -> None:
        """Restore from a checkpoint written by `state` (network args must match)."""
        for name, net in self.networks.items():
            net.load_state_dict(payload["networks"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(payload["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(payload["schedulers"][name])
        if payload.get("scaler"):
            self.ctx.scaler.load_state_dict(payload["scaler"])
        self.load_extra_state(payload.get("extra", {}))

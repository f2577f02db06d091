"""CycleGAN (Zhu et al. 2017): two generators, two discriminators, cycle and identity losses, image pools."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from medtrans.config import Config
from medtrans.models import discriminator_args, generator_args
from medtrans.train.losses import GANLoss
from medtrans.train.pool import ImagePool
from medtrans.train.recipe import Recipe
from medtrans.train.step import StepContext, set_requires_grad


class CycleGANRecipe(Recipe):
    """G_AB: A -> B, G_BA: B -> A; D_B judges domain B, D_A judges domain A. The reference G-then-D step."""

    translator = "G_AB"

    def __init__(self, cfg: Config, ctx: StepContext, spatial_dims: int, in_channels: int, out_channels: int,
                 image_size: tuple[int, ...]) -> None:
        generator = generator_args(cfg.model, spatial_dims, in_channels, out_channels, image_size)
        discriminator = discriminator_args(cfg.model, spatial_dims, out_channels)
        args = {"G_AB": generator, "G_BA": dict(generator), "D_A": discriminator, "D_B": dict(discriminator)}
        super().__init__(cfg, ctx, args, {"G": ["G_AB", "G_BA"], "D": ["D_A", "D_B"]})
        self.gan_loss = GANLoss(cfg.train.gan_mode)
        self.pools = {"A": ImagePool(cfg.train.pool_size), "B": ImagePool(cfg.train.pool_size)}

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """Adversarial, cycle and identity losses of both generators; also returns (fake_a, fake_b)."""
        n = self.networks
        t = self.cfg.train
        with self.ctx.autocast():
            fake_b = n["G_AB"](real_a)
            rec_a = n["G_BA"](fake_b)
            fake_a = n["G_BA"](real_b)
            rec_b = n["G_AB"](fake_a)
            adv_ab = self.gan_loss(n["D_B"](fake_b), True)
            adv_ba = self.gan_loss(n["D_A"](fake_a), True)
            losses = {"loss_g_ab": adv_ab, "loss_g_ba": adv_ba,
                      "loss_cycle_a": F.l1_loss(rec_a.float(), real_a.float()) * t.lambda_cycle,
                      "loss_cycle_b": F.l1_loss(rec_b.float(), real_b.float()) * t.lambda_cycle}
            if t.lambda_identity > 0:
                weight = t.lambda_cycle * t.lambda_identity
                losses["loss_idt_a"] = F.l1_loss(n["G_BA"](real_a).float(), real_a.float()) * weight
                losses["loss_idt_b"] = F.l1_loss(n["G_AB"](real_b).float(), real_b.float()) * weight
        return losses, fake_a, fake_b

    def discriminator_loss(self, name: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Least-squares (or vanilla) loss of one discriminator on real images and pooled fakes."""
        with self.ctx.autocast():
            return 0.5 * (self.gan_loss(self.networks[name](real), True)
                          + self.gan_loss(self.networks[name](fake.detach()), False))

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Update both generators, then both discriminators on image-pool fakes."""
        real_a = self.ctx.to_device(batch["a"])
        real_b = self.ctx.to_device(batch["b"])
        discriminators = [self.networks["D_A"], self.networks["D_B"]]
        generators = [self.networks["G_AB"], self.networks["G_BA"]]

        set_requires_grad(discriminators, False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        losses, fake_a, fake_b = self.generator_losses(real_a, real_b)
        self.ctx.backward_and_step(sum(losses.values()), self.optimizers["G"], generators)

        set_requires_grad(discriminators, True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        loss_d_b = self.discriminator_loss("D_B", real_b, self.pools["B"].query(fake_b.detach()))
        loss_d_a = self.discriminator_loss("D_A", real_a, self.pools["A"].query(fake_a.detach()))
        self.ctx.backward_and_step(loss_d_a + loss_d_b, self.optimizers["D"], discriminators)
        self.end_step()
        losses.update(loss_d_a=loss_d_a, loss_d_b=loss_d_b)
        return {k: v.detach() for k, v in losses.items()}

    def extra_state(self) -> dict[str, Any]:
        return {name: pool.state_dict() for name, pool in self.pools.items()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        for name, pool in self.pools.items():
            if name in state:
                pool.load_state_dict(state[name])

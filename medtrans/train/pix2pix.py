"""pix2pix (Isola et al. 2017): conditional GAN with a U-Net generator, PatchGAN and L1 to the target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medtrans.config import Config
from medtrans.models import discriminator_args, generator_args
from medtrans.train.losses import GANLoss
from medtrans.train.recipe import Recipe
from medtrans.train.step import StepContext, set_requires_grad


class Pix2PixRecipe(Recipe):
    """G: source -> target; D judges (source, target) pairs. The reference D-then-G step."""

    translator = "G"

    def __init__(self, cfg: Config, ctx: StepContext, spatial_dims: int, in_channels: int, out_channels: int,
                 image_size: tuple[int, ...]) -> None:
        args = {
            "G": generator_args(cfg.model, spatial_dims, in_channels, out_channels, image_size),
            "D": discriminator_args(cfg.model, spatial_dims, in_channels + out_channels),
        }
        super().__init__(cfg, ctx, args, {"G": ["G"], "D": ["D"]})
        self.gan_loss = GANLoss(cfg.train.gan_mode)

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """Update D on real and generated pairs, then G on fooling D plus lambda * L1."""
        G, D = self.networks["G"], self.networks["D"]
        ctx = self.ctx
        real_a = ctx.to_device(batch["source"])
        real_b = ctx.to_device(batch["target"])
        with ctx.autocast():
            fake_b = G(real_a)

        set_requires_grad([D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with ctx.autocast():
            loss_d_fake = self.gan_loss(D(torch.cat((real_a, fake_b.detach()), 1)), False)
            loss_d_real = self.gan_loss(D(torch.cat((real_a, real_b), 1)), True)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        ctx.backward_and_step(loss_d, self.optimizers["D"], [D])

        set_requires_grad([D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with ctx.autocast():
            loss_g_gan = self.gan_loss(D(torch.cat((real_a, fake_b), 1)), True)
        loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float()) * self.cfg.train.lambda_l1
        ctx.backward_and_step(loss_g_gan + loss_g_l1, self.optimizers["G"], [G])
        self.end_step()
        return {"loss_d": loss_d.detach(), "loss_g_gan": loss_g_gan.detach(), "loss_g_l1": loss_g_l1.detach()}

"""GAN loss: known values for vanilla and least-squares modes, float32 under bf16."""

from __future__ import annotations

import math

import pytest
import torch

from medtrans.train.losses import GANLoss


@pytest.mark.parametrize("target_is_real", [True, False])
def test_vanilla_at_zero_logits_is_log_2(target_is_real: bool) -> None:
    loss = GANLoss("vanilla")(torch.zeros(2, 1, 30, 30), target_is_real)
    assert loss.item() == pytest.approx(math.log(2), rel=1e-6)


def test_vanilla_matches_softplus_and_is_stable_for_large_logits() -> None:
    logits = torch.tensor([-3.0, 0.5, 2.0, 100.0, -100.0]).view(1, 1, 5)
    loss = GANLoss("vanilla")
    # -log(sigmoid(x)) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x)
    assert loss(logits, True).item() == pytest.approx(torch.nn.functional.softplus(-logits).mean().item(), rel=1e-6)
    assert loss(logits, False).item() == pytest.approx(torch.nn.functional.softplus(logits).mean().item(), rel=1e-6)
    assert loss(torch.full((1, 1, 2, 2), -100.0), True).item() == pytest.approx(100.0)


def test_lsgan_is_mean_squared_distance_to_target_on_raw_logits() -> None:
    logits = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0]).view(1, 1, 5)
    loss = GANLoss("lsgan")
    # Raw logits, no activation: a negative logit counts in full (MONAI's default would LeakyReLU it).
    assert loss(logits, True).item() == pytest.approx(((logits - 1) ** 2).mean().item())
    assert loss(logits, False).item() == pytest.approx((logits**2).mean().item())
    assert loss(logits, True).item() == pytest.approx((9 + 2.25 + 1 + 0 + 4) / 5)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan"])
def test_loss_is_float32_under_bf16_autocast(mode: str) -> None:
    logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        half_logits = logits.to(torch.bfloat16) * 3
        loss = GANLoss(mode)(half_logits, target_is_real=True)
    assert loss.dtype == torch.float32
    expected = GANLoss(mode)(half_logits.detach().float(), target_is_real=True)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_lsgan_gradient_pushes_logits_to_target() -> None:
    logits = torch.tensor([0.0, 2.0], requires_grad=True)
    GANLoss("lsgan")(logits, target_is_real=True).backward()
    # d/dx mean((x - 1)^2) = 2 (x - 1) / n
    assert torch.allclose(logits.grad, torch.tensor([-1.0, 1.0]))


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="wgan"):
        GANLoss("wgan")

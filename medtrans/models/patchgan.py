"""The PatchGAN discriminator (Isola et al. 2017), 2D or 3D: one real/fake logit per patch.

Written here rather than taken from ``monai.networks.nets.PatchDiscriminator`` because MONAI's
keeps doubling the width past 8 * ndf (the reference caps it, so ``n_layers > 3`` would differ)
and its ``forward`` returns every layer's features with the logits last, a trap for a GAN loss.
"""

from __future__ import annotations

import torch
from torch import nn

from medtrans.models.common import check_norm, check_spatial_dims, conv, conv_bias, init_weights, norm_layer

MAX_WIDTH_FACTOR = 8
KERNEL_SIZE = 4


class PatchGANDiscriminator(nn.Module):
    """``n_layers`` stride-2 4x4 convs, then two stride-1 4x4 convs; raw logits (N, 1, *patches).

    Same layers and parameter count as the reference ``NLayerDiscriminator``: no norm on the first
    conv, LeakyReLU(0.2) after every conv but the last, bias only where no batch norm follows.
    With ``n_layers=3`` each logit sees a 70 x 70 (x 70) receptive field. For pix2pix pass
    ``in_channels = input + output channels`` (the pair is concatenated).

    Example:
        >>> net = PatchGANDiscriminator(spatial_dims=2, in_channels=2, ndf=8)
        >>> net(torch.zeros(1, 2, 256, 256)).shape
        torch.Size([1, 1, 30, 30])
    """

    kind = "patchgan"

    def __init__(self, spatial_dims: int = 2, in_channels: int = 2, ndf: int = 64, n_layers: int = 3,
                 norm: str = "batch") -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_norm(norm)
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        self.init_args = {"kind": self.kind, "spatial_dims": spatial_dims, "in_channels": in_channels,
                          "ndf": ndf, "n_layers": n_layers, "norm": norm}
        widths = [ndf * min(2**i, MAX_WIDTH_FACTOR) for i in range(n_layers + 1)]
        layers: list[nn.Module] = [conv(spatial_dims, in_channels, ndf, KERNEL_SIZE, stride=2, padding=1),
                                   nn.LeakyReLU(0.2)]
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            layers += [conv(spatial_dims, widths[i - 1], widths[i], KERNEL_SIZE, stride=stride, padding=1,
                            bias=conv_bias(norm)),
                       norm_layer(norm, spatial_dims, widths[i]), nn.LeakyReLU(0.2)]
        layers.append(conv(spatial_dims, widths[-1], 1, KERNEL_SIZE, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Patch logits (N, 1, *patches) for images (N, C_in, *spatial); no sigmoid."""
        return self.model(x)

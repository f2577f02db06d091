"""The pix2pix U-Net generator (Isola et al. 2017), 2D or 3D, for inputs of any size."""

from __future__ import annotations

import torch
from torch import nn

from medtrans.models.common import (check_norm, check_spatial_dims, conv, conv_bias, conv_transpose,
                                    init_weights, norm_layer, pad_to_multiple)

# The reference caps the encoder width at 8 * ngf (reached at the fourth level).
MAX_WIDTH_FACTOR = 8
# Dropout sits in the decoder blocks of the 8 * ngf -> 8 * ngf levels below the innermost one
# (levels 4 .. num_downs - 2, the reference's ``num_downs - 5`` middle blocks).
FIRST_DROPOUT_LEVEL = 4


class UNetGenerator(nn.Module):
    """Encoder-decoder with skip connections, ``num_downs`` stride-2 levels, tanh output in [-1, 1].

    Same layers and parameter count as the reference ``UnetGenerator`` (``unet_256`` is
    ``num_downs=8``, ``unet_128`` is 7): 4x4 stride-2 convs, LeakyReLU(0.2) in the encoder, ReLU in
    the decoder, no norm on the outermost encoder conv nor the innermost one. Any input size works:
    ``forward`` pads to a multiple of ``2 ** num_downs`` and crops the output back.

    Example:
        >>> net = UNetGenerator(spatial_dims=3, in_channels=1, out_channels=1, ngf=8, num_downs=4)
        >>> net(torch.zeros(1, 1, 40, 36, 28)).shape
        torch.Size([1, 1, 40, 36, 28])
    """

    kind = "unet"

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5, num_downs: int = 8) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_norm(norm)
        if num_downs < 1:
            raise ValueError(f"num_downs must be at least 1, got {num_downs}")
        self.init_args = {"kind": self.kind, "spatial_dims": spatial_dims, "in_channels": in_channels,
                          "out_channels": out_channels, "ngf": ngf, "norm": norm, "dropout": dropout,
                          "num_downs": num_downs}
        self.num_downs = num_downs
        widths = [ngf * min(2**level, MAX_WIDTH_FACTOR) for level in range(num_downs)]
        self.down = nn.ModuleList(
            _down_block(spatial_dims, in_channels if level == 0 else widths[level - 1], widths[level], norm,
                        outermost=level == 0, innermost=level == num_downs - 1)
            for level in range(num_downs))
        self.up = nn.ModuleList(
            _up_block(spatial_dims, widths[level] * (1 if level == num_downs - 1 else 2),
                      out_channels if level == 0 else widths[level - 1], norm,
                      dropout if FIRST_DROPOUT_LEVEL <= level < num_downs - 1 else 0.0, outermost=level == 0)
            for level in range(num_downs))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate (N, C_in, *spatial) to (N, C_out, *spatial), values in [-1, 1]."""
        padded, crop = pad_to_multiple(x, 2**self.num_downs)
        skips = []
        features = padded
        for down in self.down:
            features = down(features)
            skips.append(features)
        features = self.up[-1](skips[-1])
        for level in reversed(range(self.num_downs - 1)):
            features = self.up[level](torch.cat([skips[level], features], dim=1))
        return features[crop]


def _down_block(spatial_dims: int, in_channels: int, out_channels: int, norm: str, *, outermost: bool,
                innermost: bool) -> nn.Sequential:
    """Encoder level: [LeakyReLU(0.2)] -> 4x4 stride-2 conv -> [norm]; halves every side."""
    layers: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2)]
    layers.append(conv(spatial_dims, in_channels, out_channels, 4, stride=2, padding=1, bias=conv_bias(norm)))
    if not (outermost or innermost):
        layers.append(norm_layer(norm, spatial_dims, out_channels))
    return nn.Sequential(*layers)


def _up_block(spatial_dims: int, in_channels: int, out_channels: int, norm: str, dropout: float, *,
              outermost: bool) -> nn.Sequential:
    """Decoder level: ReLU -> 4x4 stride-2 transposed conv -> norm [-> dropout], or -> tanh when outermost."""
    layers: list[nn.Module] = [nn.ReLU()]
    if outermost:
        layers += [conv_transpose(spatial_dims, in_channels, out_channels, 4, stride=2, padding=1), nn.Tanh()]
        return nn.Sequential(*layers)
    layers += [conv_transpose(spatial_dims, in_channels, out_channels, 4, stride=2, padding=1, bias=conv_bias(norm)),
               norm_layer(norm, spatial_dims, out_channels)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)

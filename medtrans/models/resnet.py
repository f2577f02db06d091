"""The CycleGAN ResNet generator (Zhu et al. 2017, after Johnson et al.), 2D or 3D, any input size."""

from __future__ import annotations

import torch
from torch import nn

from medtrans.models.common import (check_norm, check_spatial_dims, conv, conv_bias, conv_transpose,
                                    init_weights, norm_layer, pad_to_multiple, reflection_pad)

N_DOWNSAMPLINGS = 2


class ResNetGenerator(nn.Module):
    """7x7 stem, two stride-2 convs, ``n_blocks`` residual blocks, two transposed convs, 7x7 head, tanh.

    Same layers and parameter count as the reference ``ResnetGenerator`` (``resnet_9blocks`` for
    256-pixel images, ``resnet_6blocks`` for 128), reflection padding throughout. Any input size
    works: ``forward`` pads to a multiple of 4 and crops the output back.

    Example:
        >>> net = ResNetGenerator(spatial_dims=2, ngf=8, n_blocks=2)
        >>> net(torch.zeros(1, 1, 100, 75)).shape
        torch.Size([1, 1, 100, 75])
    """

    kind = "resnet"

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, out_channels: int = 1, ngf: int = 64,
                 norm: str = "instance", dropout: float = 0.0, n_blocks: int = 9) -> None:
        super().__init__()
        check_spatial_dims(spatial_dims)
        check_norm(norm)
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.init_args = {"kind": self.kind, "spatial_dims": spatial_dims, "in_channels": in_channels,
                          "out_channels": out_channels, "ngf": ngf, "norm": norm, "dropout": dropout,
                          "n_blocks": n_blocks}
        bias = conv_bias(norm)
        layers: list[nn.Module] = [reflection_pad(spatial_dims, 3),
                                   conv(spatial_dims, in_channels, ngf, 7, bias=bias),
                                   norm_layer(norm, spatial_dims, ngf), nn.ReLU()]
        for i in range(N_DOWNSAMPLINGS):
            width = ngf * 2**i
            layers += [conv(spatial_dims, width, 2 * width, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, spatial_dims, 2 * width), nn.ReLU()]
        bottleneck = ngf * 2**N_DOWNSAMPLINGS
        layers += [ResidualBlock(spatial_dims, bottleneck, norm, dropout) for _ in range(n_blocks)]
        for i in range(N_DOWNSAMPLINGS):
            width = bottleneck // 2**i
            layers += [conv_transpose(spatial_dims, width, width // 2, 3, stride=2, padding=1, output_padding=1,
                                      bias=bias),
                       norm_layer(norm, spatial_dims, width // 2), nn.ReLU()]
        layers += [reflection_pad(spatial_dims, 3), conv(spatial_dims, ngf, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Translate (N, C_in, *spatial) to (N, C_out, *spatial), values in [-1, 1]."""
        padded, crop = pad_to_multiple(x, 2**N_DOWNSAMPLINGS)
        return self.model(padded)[crop]


class ResidualBlock(nn.Module):
    """x + (reflect-pad, 3x3 conv, norm, ReLU, [dropout], reflect-pad, 3x3 conv, norm)(x)."""

    def __init__(self, spatial_dims: int, channels: int, norm: str, dropout: float) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [reflection_pad(spatial_dims, 1),
                                   conv(spatial_dims, channels, channels, 3, bias=bias),
                                   norm_layer(norm, spatial_dims, channels), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [reflection_pad(spatial_dims, 1), conv(spatial_dims, channels, channels, 3, bias=bias),
                   norm_layer(norm, spatial_dims, channels)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual update, same shape as ``x``."""
        return x + self.conv_block(x)

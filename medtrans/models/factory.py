"""Build networks from plain argument dicts (what checkpoints store as ``network_args``) and the config.

Example:
    >>> from medtrans.config import ModelConfig
    >>> args = generator_args(ModelConfig(), spatial_dims=2, in_channels=1, out_channels=1, image_size=(256, 256))
    >>> args["kind"], args["num_downs"]
    ('unet', 8)
    >>> net = build_network(args)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from medtrans.config import ModelConfig
from medtrans.errors import CheckpointError
from medtrans.models.patchgan import PatchGANDiscriminator
from medtrans.models.resnet import ResNetGenerator
from medtrans.models.unet import UNetGenerator

NETWORK_CLASSES = {cls.kind: cls for cls in (UNetGenerator, ResNetGenerator, PatchGANDiscriminator)}
MAX_UNET_DOWNS = 8
RESNET_LARGE_IMAGE = 256


def build_network(args: dict[str, Any]) -> nn.Module:
    """Rebuild a network from its ``init_args`` dict (freshly initialised; load the state dict after).

    Raises:
        CheckpointError: the dict names an unknown kind or arguments the network does not take.
    """
    kind = args.get("kind")
    if kind not in NETWORK_CLASSES:
        raise CheckpointError(f"network_args: unknown network kind {kind!r}; expected one of "
                              f"{', '.join(sorted(NETWORK_CLASSES))}")
    kwargs = {k: v for k, v in args.items() if k != "kind"}
    try:
        return NETWORK_CLASSES[kind](**kwargs)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"network_args: cannot build a {kind!r} network from {kwargs}: {err}") from None


def unet_depth(image_size: int | Sequence[int]) -> int:
    """Number of U-Net downsamplings for an image: log2 of its smallest side, between 1 and 8.

    256 gives the reference ``unet_256`` (8), 128 gives ``unet_128`` (7), 100 gives 6.
    """
    return min(max(int(math.log2(_smallest_side(image_size))), 1), MAX_UNET_DOWNS)


def resnet_blocks(image_size: int | Sequence[int]) -> int:
    """Reference residual-block count: 9 for images of 256 or more on their smallest side, else 6."""
    return 9 if _smallest_side(image_size) >= RESNET_LARGE_IMAGE else 6


def generator_args(model_cfg: ModelConfig, spatial_dims: int, in_channels: int, out_channels: int,
                   image_size: int | Sequence[int]) -> dict[str, Any]:
    """The generator's ``network_args`` for the ``model`` config section and the training image size (voxels)."""
    common = {"spatial_dims": spatial_dims, "in_channels": in_channels, "out_channels": out_channels,
              "ngf": model_cfg.ngf, "norm": model_cfg.norm, "dropout": model_cfg.dropout}
    if model_cfg.generator == "unet":
        return {"kind": UNetGenerator.kind, **common, "num_downs": unet_depth(image_size)}
    n_blocks = model_cfg.n_blocks if model_cfg.n_blocks is not None else resnet_blocks(image_size)
    return {"kind": ResNetGenerator.kind, **common, "n_blocks": n_blocks}


def discriminator_args(model_cfg: ModelConfig, spatial_dims: int, in_channels: int) -> dict[str, Any]:
    """The PatchGAN's ``network_args``; for pix2pix ``in_channels`` is input + output channels."""
    return {"kind": PatchGANDiscriminator.kind, "spatial_dims": spatial_dims, "in_channels": in_channels,
            "ndf": model_cfg.ndf, "n_layers": model_cfg.n_layers_d, "norm": model_cfg.norm}


def _smallest_side(image_size: int | Sequence[int]) -> int:
    return image_size if isinstance(image_size, int) else min(image_size)

"""Networks for image translation: pix2pix U-Net and CycleGAN ResNet generators, PatchGAN discriminator.

All are generic over ``spatial_dims`` 2 and 3, accept inputs of any size, keep their constructor
arguments in ``init_args`` and are rebuilt from them by `build_network`.
"""

from medtrans.models.common import count_parameters
from medtrans.models.factory import (build_network, discriminator_args, generator_args, resnet_blocks,
                                     unet_depth)
from medtrans.models.patchgan import PatchGANDiscriminator
from medtrans.models.resnet import ResNetGenerator
from medtrans.models.unet import UNetGenerator

__all__ = ["PatchGANDiscriminator", "ResNetGenerator", "UNetGenerator", "build_network", "count_parameters",
           "discriminator_args", "generator_args", "resnet_blocks", "unet_depth"]

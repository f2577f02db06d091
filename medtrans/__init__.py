"""medtrans: medical image translation (MRI -> CT with pix2pix, unpaired with CycleGAN)."""

__version__ = "0.1.0"

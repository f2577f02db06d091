"""Networks: shapes for odd 2D/3D sizes, reference parameter counts, rebuild from args, init, bf16."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from medtrans.config import ModelConfig
from medtrans.errors import CheckpointError
from medtrans.models import (PatchGANDiscriminator, ResNetGenerator, UNetGenerator, build_network,
                             count_parameters, discriminator_args, generator_args, resnet_blocks, unet_depth)
from medtrans.models.common import pad_to_multiple

SIZES = {2: (100, 75), 3: (40, 36, 28)}


def small_args(kind: str, spatial_dims: int, norm: str = "batch", dropout: float = 0.0) -> dict:
    """Fast-to-run network_args for ``kind`` at the odd test size (ngf/ndf 8 in 2D, 4 in 3D)."""
    width = 8 if spatial_dims == 2 else 4
    cfg = ModelConfig(generator="resnet" if kind == "resnet" else "unet", ngf=width, ndf=width, norm=norm,
                      dropout=dropout, n_blocks=2)
    if kind == "patchgan":
        return discriminator_args(cfg, spatial_dims, in_channels=2)
    return generator_args(cfg, spatial_dims, in_channels=1, out_channels=1, image_size=SIZES[spatial_dims])


def patchgan_output_side(side: int, n_layers: int = 3) -> int:
    """Output side of the PatchGAN: 4x4/stride-2/pad-1 convs floor-halve, the two stride-1 ones take 1 each."""
    for _ in range(n_layers):
        side //= 2
    return side - 2


def channels_last(spatial_dims: int) -> torch.memory_format:
    return torch.channels_last if spatial_dims == 2 else torch.channels_last_3d


def reference_count(args: dict) -> int:
    """Parameter count of a network built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        return count_parameters(build_network(args))


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("kind", ["unet", "resnet"])
def test_generator_keeps_odd_input_size_and_tanh_range(kind: str, spatial_dims: int) -> None:
    torch.manual_seed(0)
    net = build_network(small_args(kind, spatial_dims, norm="instance"))
    # Blow up every weight so pre-tanh values are far past +-1: the range check is then not vacuous.
    with torch.no_grad():
        for param in net.parameters():
            param.mul_(100)
    x = torch.randn(2, 1, *SIZES[spatial_dims])
    y = net(x)
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0
    assert (y.abs() > 0.99).float().mean() > 0.5


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_patchgan_output_shape(spatial_dims: int) -> None:
    net = build_network(small_args("patchgan", spatial_dims))
    logits = net(torch.randn(2, 2, *SIZES[spatial_dims]))
    assert logits.shape == (2, 1, *(patchgan_output_side(s) for s in SIZES[spatial_dims]))


def test_unet_deeper_than_the_image_still_works() -> None:
    """unet_256 on a 100 x 75 slice: padded to 256 x 256 inside, cropped back (the reference refuses)."""
    net = UNetGenerator(spatial_dims=2, ngf=4, num_downs=8).eval()
    x = torch.randn(1, 1, 100, 75)
    assert net(x).shape == x.shape


def test_pad_to_multiple_centres_and_crops_back() -> None:
    x = torch.randn(1, 2, 5, 9, 16)
    padded, crop = pad_to_multiple(x, 8)
    assert padded.shape == (1, 2, 8, 16, 16)
    assert torch.equal(padded[crop], x)
    # Split evenly and replicated: the first axis gets 1 copy of its first slice before, 2 of its last after.
    first_axis_only, _ = pad_to_multiple(x[..., :8, :8], 8)
    assert first_axis_only.shape == (1, 2, 8, 8, 8)
    assert torch.equal(first_axis_only[:, :, 1:6], x[..., :8, :8])
    assert torch.equal(first_axis_only[:, :, 0], x[:, :, 0, :8, :8])
    assert torch.equal(first_axis_only[:, :, 7], x[:, :, 4, :8, :8])
    unpadded, _ = pad_to_multiple(x, 1)
    assert unpadded is x


# Reference counts: junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py (commit 7891385),
# ``define_G``/``define_D`` classes instantiated in a scratch folder for 2D, 1 channel, ngf=ndf=64:
# UnetGenerator(1, 1, 8 or 7, 64, batch), ResnetGenerator(1, 1, 64, instance, n_blocks=9 or 6),
# NLayerDiscriminator(2 or 1, 64, n_layers=3, batch or instance). Our layers were also checked to
# give bit-identical outputs with the reference weights copied in.
REFERENCE_PARAMETERS = [
    ("unet_256 batch", {"kind": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 64,
                        "norm": "batch", "dropout": 0.5, "num_downs": 8}, 54_407_809),
    ("unet_128 batch", {"kind": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 64,
                        "norm": "batch", "dropout": 0.5, "num_downs": 7}, 41_822_849),
    ("resnet_9blocks instance", {"kind": "resnet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                                 "ngf": 64, "norm": "instance", "dropout": 0.0, "n_blocks": 9}, 11_365_633),
    ("resnet_6blocks instance", {"kind": "resnet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                                 "ngf": 64, "norm": "instance", "dropout": 0.0, "n_blocks": 6}, 7_825_153),
    ("basic D conditional batch", {"kind": "patchgan", "spatial_dims": 2, "in_channels": 2, "ndf": 64,
                                   "n_layers": 3, "norm": "batch"}, 2_764_609),
    ("basic D cyclegan instance", {"kind": "patchgan", "spatial_dims": 2, "in_channels": 1, "ndf": 64,
                                   "n_layers": 3, "norm": "instance"}, 2_762_689),
    ("basic D cyclegan batch", {"kind": "patchgan", "spatial_dims": 2, "in_channels": 1, "ndf": 64,
                                "n_layers": 3, "norm": "batch"}, 2_763_585),
]


@pytest.mark.parametrize("name,args,expected", REFERENCE_PARAMETERS, ids=[r[0] for r in REFERENCE_PARAMETERS])
def test_parameter_counts_match_reference(name: str, args: dict, expected: int) -> None:
    count = reference_count(args)
    print(f"{name}: {count:,} parameters (reference {expected:,})")
    assert count == expected


def test_config_defaults_give_reference_pix2pix_networks() -> None:
    cfg = ModelConfig()
    g_args = generator_args(cfg, spatial_dims=2, in_channels=1, out_channels=1, image_size=(256, 256))
    d_args = discriminator_args(cfg, spatial_dims=2, in_channels=2)
    assert reference_count(g_args) == 54_407_809
    assert reference_count(d_args) == 2_764_609


@pytest.mark.parametrize("num_downs,expected_dropouts", [(8, 3), (7, 2), (5, 0), (1, 0)])
def test_unet_dropout_in_inner_decoder_blocks_only(num_downs: int, expected_dropouts: int) -> None:
    """The reference puts dropout in the num_downs - 5 decoder blocks of width 8 * ngf below the innermost."""
    with torch.device("meta"):
        net = UNetGenerator(ngf=2, num_downs=num_downs, dropout=0.5)
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == expected_dropouts
    assert all(d.p == 0.5 for d in dropouts)


def test_patchgan_receptive_field_is_70() -> None:
    net = PatchGANDiscriminator(spatial_dims=2, in_channels=1, ndf=4).eval()
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    logits = net(x)
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    assert rows.min() > 0 and rows.max() < 159  # the field is inside the image, not clipped
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


@pytest.mark.parametrize("kind", ["unet", "resnet", "patchgan"])
def test_build_network_round_trip(kind: str, tmp_path) -> None:
    torch.manual_seed(0)
    net = build_network(small_args(kind, 2, dropout=0.5)).eval()
    path = tmp_path / "ckpt.pt"
    torch.save({"network_args": {"G": net.init_args}, "networks": {"G": net.state_dict()}}, path)
    ckpt = torch.load(path, weights_only=True)
    args = ckpt["network_args"]["G"]
    assert json.loads(json.dumps(args)) == args  # plain primitives only

    torch.manual_seed(1)
    rebuilt = build_network(args)
    rebuilt.load_state_dict(ckpt["networks"]["G"])
    rebuilt.eval()
    assert type(rebuilt) is type(net) and rebuilt.init_args == net.init_args
    x = torch.randn(1, 2 if kind == "patchgan" else 1, 64, 48)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), net(x))


def test_build_network_rejects_bad_args() -> None:
    with pytest.raises(CheckpointError, match="unknown network kind 'vnet'"):
        build_network({"kind": "vnet"})
    with pytest.raises(CheckpointError, match="n_blocks"):
        build_network({"kind": "unet", "n_blocks": 9})
    with pytest.raises(CheckpointError, match="norm"):
        build_network({"kind": "patchgan", "norm": "group"})


@pytest.mark.parametrize("image_size,depth,blocks", [
    (256, 8, 9), ((256, 256), 8, 9), ((128, 128), 7, 6), ((100, 75), 6, 6), ((40, 36, 28), 4, 6),
    ((512, 300), 8, 9), (1, 1, 6), ((64, 64, 64), 6, 6)])
def test_depth_and_blocks_from_image_size(image_size, depth: int, blocks: int) -> None:
    assert unet_depth(image_size) == depth
    assert resnet_blocks(image_size) == blocks


def test_generator_args_from_config() -> None:
    cfg = ModelConfig(generator="resnet", ngf=32, norm="instance", dropout=0.0, n_blocks=None)
    args = generator_args(cfg, spatial_dims=3, in_channels=3, out_channels=1, image_size=(64, 64, 64))
    assert args == {"kind": "resnet", "spatial_dims": 3, "in_channels": 3, "out_channels": 1, "ngf": 32,
                    "norm": "instance", "dropout": 0.0, "n_blocks": 6}
    explicit = generator_args(ModelConfig(generator="resnet", n_blocks=4), 2, 1, 1, (256, 256))
    assert explicit["n_blocks"] == 4
    d_args = discriminator_args(ModelConfig(ndf=16, n_layers_d=4, norm="instance"), 3, 2)
    assert d_args == {"kind": "patchgan", "spatial_dims": 3, "in_channels": 2, "ndf": 16, "n_layers": 4,
                      "norm": "instance"}
    assert isinstance(build_network(d_args), PatchGANDiscriminator)


@pytest.mark.parametrize("kind", ["unet", "resnet", "patchgan"])
def test_init_statistics(kind: str) -> None:
    """Reference init_weights('normal', 0.02): conv N(0, 0.02), batch-norm weight N(1, 0.02), biases 0."""
    torch.manual_seed(0)
    net = {"unet": lambda: UNetGenerator(ngf=16, num_downs=6),
           "resnet": lambda: ResNetGenerator(ngf=16, n_blocks=2, norm="batch"),
           "patchgan": lambda: PatchGANDiscriminator(ndf=16)}[kind]()
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    weights = torch.cat([m.weight.detach().flatten() for m in convs])
    assert weights.numel() > 100_000
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)
    assert abs(weights.mean().item()) < 1e-3
    norm_weights = torch.cat([m.weight.detach() for m in norms])
    assert norm_weights.mean().item() == pytest.approx(1.0, abs=0.01)
    assert norm_weights.std().item() == pytest.approx(0.02, rel=0.3)
    biases = [m.bias for m in convs + norms if m.bias is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("kind", ["unet", "resnet", "patchgan"])
def test_channels_last_bf16_autocast_close_to_float32(kind: str, spatial_dims: int) -> None:
    torch.manual_seed(0)
    net = build_network(small_args(kind, spatial_dims))
    x = torch.rand(2, 2 if kind == "patchgan" else 1, *SIZES[spatial_dims]) * 2 - 1
    fmt = channels_last(spatial_dims)
    with torch.no_grad():
        expected = net(x)
        net = net.to(memory_format=fmt)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(x.contiguous(memory_format=fmt))
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all()
    relative_rms = (out.float() - expected).pow(2).mean().sqrt() / expected.pow(2).mean().sqrt()
    assert relative_rms < 0.05

"""A tiny slice classifier, domain A versus domain B, that scores how target-like translated volumes look.

Trained from scratch for a bounded number of steps (tens of seconds on two CPU cores) on real body
slices of the training split; its score of a volume is the fraction of body slices judged domain B.
Slices are placed on one square canvas (the largest training slice, in voxels) and resized to
``image_size`` pixels, so every volume is seen at the same scale; voxels outside the body are set
to the background value -1 so only the body's content counts.

Example:
    >>> fitted = train_domain_classifier(volumes_a, volumes_b, steps=300, seed=0)  # doctest: +SKIP
    >>> fitted.judged_b(translated, mask)  # doctest: +SKIP
    0.71
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from medtrans.data.views import SliceView

BACKGROUND = -1.0

MaskedVolume = tuple[np.ndarray, np.ndarray]
"""A normalized (X, Y, Z) volume in [-1, 1] and its (X, Y, Z) bool body mask."""


class DomainClassifier(nn.Module):
    """Three strided 3x3 convolutions and global average pooling: (B, 1, H, W) -> (B,) logits of domain B.

    No normalization layers: the domains may differ by intensity alone, which instance norm would erase.
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))[:, 0]


def body_slices(volume: np.ndarray, mask: np.ndarray, view: SliceView) -> np.ndarray:
    """(N, H, W) float32 slices along ``view.axis`` with enough body, voxels outside the body set to -1."""
    masked = np.where(mask, volume, BACKGROUND).astype(np.float32)
    locations = view.locations(mask)
    return np.moveaxis(np.take(masked, locations, axis=view.axis), view.axis, 0)


@dataclass(frozen=True)
class SliceCanvas:
    """Centre slices on a ``side`` x ``side`` canvas (padded with -1 or cropped), then resize to ``image_size``."""

    side: int
    image_size: int

    def prepare(self, slices: np.ndarray) -> torch.Tensor:
        """(N, 1, image_size, image_size) float32 tensor of (N, H, W) slices."""
        tensor = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))
        for dim in (1, 2):
            tensor = _fit_along(tensor, dim, self.side)
        resized = F.interpolate(tensor[:, None], size=(self.image_size, self.image_size), mode="bilinear",
                                antialias=True, align_corners=False)
        return resized


def _fit_along(tensor: torch.Tensor, dim: int, size: int) -> torch.Tensor:
    """``tensor`` centre-padded with -1 or centre-cropped to ``size`` along ``dim``."""
    excess = tensor.shape[dim] - size
    if excess > 0:
        return tensor.narrow(dim, excess // 2, size)
    if excess < 0:
        missing = -excess
        pad = [0, 0, 0, 0]
        pad[2 * (2 - dim)] = missing // 2  # F.pad lists the last dimension first
        pad[2 * (2 - dim) + 1] = missing - missing // 2
        return F.pad(tensor, pad, value=BACKGROUND)
    return tensor


@dataclass
class FittedClassifier:
    """A trained `DomainClassifier` with the canvas and slice view its inputs need."""

    network: DomainClassifier
    canvas: SliceCanvas
    view: SliceView
    device: torch.device
    train_accuracy: float
    batch_size: int = 64

    @torch.inference_mode()
    def probability_b(self, slices: np.ndarray) -> np.ndarray:
        """(N,) probabilities that each of the (N, H, W) slices is domain B."""
        self.network.eval()
        with _one_cpu_thread(self.device):
            probabilities = [torch.sigmoid(self.network(self.canvas.prepare(batch).to(self.device)))
                             for batch in np.array_split(slices, range(self.batch_size, len(slices), self.batch_size))]
        return torch.cat(probabilities).float().cpu().numpy()

    def judged_b(self, volume: np.ndarray, mask: np.ndarray) -> float:
        """Fraction of the volume's body slices judged domain B (probability above 0.5); NaN without body slices."""
        probabilities = self.probability_b(body_slices(volume, mask, self.view))
        return float((probabilities > 0.5).mean()) if probabilities.size else float("nan")


def _judged_b_per_slice(fitted: FittedClassifier, stacks: list[np.ndarray]) -> np.ndarray:
    """Whether each slice of every (N, H, W) stack is judged domain B, concatenated."""
    return np.concatenate([fitted.probability_b(stack) > 0.5 for stack in stacks])


def _balanced_accuracy(fitted: FittedClassifier, stacks_a: list[np.ndarray], stacks_b: list[np.ndarray]) -> float:
    """Mean of the per-domain accuracies, so a domain with more slices does not dominate."""
    correct_a = (~_judged_b_per_slice(fitted, stacks_a)).mean()
    correct_b = _judged_b_per_slice(fitted, stacks_b).mean()
    return float((correct_a + correct_b) / 2)


def _random_flips(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right and up-down at random: cheap augmentation against memorising slices."""
    for dim in (2, 3):
        flip = torch.rand(len(images), generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(dim), images)
    return images


@contextlib.contextmanager
def _one_cpu_thread(device: torch.device) -> Iterator[None]:
    """Run torch on one CPU thread inside the block (no effect for GPUs), restoring the count after.

    The network's convolutions are too small to split across threads: measured 6 ms per step on one
    thread against 160 ms on two when the two cores are shared with other work.
    """
    if device.type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_domain_classifier(volumes_a: list[MaskedVolume], volumes_b: list[MaskedVolume], steps: int = 300,
                            batch_size: int = 32, seed: int = 0, device: torch.device | str = "cpu",
                            image_size: int = 64, axis: int = 2, min_body_fraction: float = 0.05,
                            lr: float = 1e-3) -> FittedClassifier:
    """Train a `DomainClassifier` on body slices of real volumes of domain A (label 0) and B (label 1).

    Every step draws ``batch_size // 2`` slices of each domain, so the classes are balanced whatever
    the cohort sizes. Weight initialisation and sampling are seeded without touching the global RNG.

    Args:
        volumes_a, volumes_b: (volume, mask) pairs, (X, Y, Z) normalized to [-1, 1] and bool.
        steps: optimisation steps (Adam, learning rate ``lr``).
        image_size: side in pixels of the resized canvas the network sees.
        axis: slice axis (2 = axial in RAS arrays).
        min_body_fraction: a slice is used when at least this fraction of it is body.

    Returns:
        The fitted classifier; ``train_accuracy`` is its balanced accuracy on all training slices.

    Raises:
        ValueError: a domain has no slice with enough body.
    """
    device = torch.device(device)
    view = SliceView(axis, 0, min_body_fraction)
    per_volume = {domain: [stack for stack in (body_slices(v, m, view) for v, m in volumes) if len(stack)]
                  for domain, volumes in (("a", volumes_a), ("b", volumes_b))}
    for domain, stacks in per_volume.items():
        if not stacks:
            raise ValueError(f"domain {domain.upper()}: no training slice with at least {min_body_fraction:.0%} body")
    side = max(max(stack.shape[1:]) for stacks in per_volume.values() for stack in stacks)
    canvas = SliceCanvas(side, image_size)
    # Slices differ in shape between subjects, so each volume is put on the canvas on its own.
    images = {domain: torch.cat([canvas.prepare(stack) for stack in stacks]) for domain, stacks in per_volume.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = DomainClassifier().to(device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    half = max(1, batch_size // 2)
    labels = torch.cat([torch.zeros(half), torch.ones(half)]).to(device)
    network.train()
    with _one_cpu_thread(device):
        for _ in tqdm(range(steps), desc="domain classifier", unit="step", leave=False):
            picks = [images[d][torch.randint(len(images[d]), (half,), generator=generator)] for d in ("a", "b")]
            batch = _random_flips(torch.cat(picks), generator).to(device)
            loss = F.binary_cross_entropy_with_logits(network(batch), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    fitted = FittedClassifier(network.eval(), canvas, view, device, train_accuracy=float("nan"))
    fitted.train_accuracy = _balanced_accuracy(fitted, per_volume["a"], per_volume["b"])
    return fitted

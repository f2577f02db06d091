"""History of generated images for the CycleGAN discriminators (Shrivastava et al. 2017)."""

from __future__ import annotations

import torch


class ImagePool:
    """Buffer of up to ``pool_size`` past generator outputs, as in the CycleGAN reference.

    ``query`` stores each incoming image while the pool fills; once full, each image is, with
    probability 0.5, swapped with a random stored one (the stored one is returned), else returned
    as is. Random draws use torch's global RNG only, so restoring ``torch`` RNG state and
    `load_state_dict` replays a run exactly. ``pool_size`` 0 returns the input unchanged.

    Example:
        >>> pool = ImagePool(50)
        >>> fake_for_d = pool.query(fake_b.detach())  # doctest: +SKIP
    """

    def __init__(self, pool_size: int) -> None:
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch (N, C, *spatial) mixing ``images`` with stored older ones, detached from the graph.

        With ``pool_size`` 0, ``images`` itself is returned.
        """
        if self.pool_size == 0:
            return images
        return torch.stack([self._exchange(image) for image in images.detach()])

    def _exchange(self, image: torch.Tensor) -> torch.Tensor:
        """Store ``image`` and return it while filling; once full, maybe swap it for a stored one."""
        if len(self.images) < self.pool_size:
            self.images.append(image.clone())
            return image
        if torch.rand(()).item() < 0.5:
            return image
        index = int(torch.randint(self.pool_size, ()).item())
        stored = self.images[index]
        self.images[index] = image.clone()
        # A restored pool lives on the CPU until its images are swapped out.
        return stored.to(device=image.device, dtype=image.dtype)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The stored images as one tensor (M, C, *spatial), M <= pool_size; loadable with weights_only=True."""
        if not self.images:
            return {"images": torch.empty(0)}
        return {"images": torch.stack([image.cpu() for image in self.images])}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the images saved by `state_dict` (the first ``pool_size`` if it held more)."""
        self.images = [image.clone() for image in state["images"][: self.pool_size]]

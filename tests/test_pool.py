"""ImagePool: passthrough at size 0, filling, swapping with stored images, torch-seeded, state round trip."""

from __future__ import annotations

import pytest
import torch

from medtrans.train.pool import ImagePool


def numbered_images(start: int, count: int) -> torch.Tensor:
    """A batch (count, 1, 4, 4) whose image i is filled with the value start + i (its identity)."""
    return torch.arange(start, start + count, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()


def ids(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def test_size_zero_returns_the_input() -> None:
    pool = ImagePool(0)
    images = numbered_images(0, 3)
    assert pool.query(images) is images
    assert pool.state_dict()["images"].numel() == 0


def test_fills_up_to_size_returning_the_inputs() -> None:
    pool = ImagePool(5)
    assert ids(pool.query(numbered_images(0, 3))) == [0, 1, 2]
    assert ids(pool.query(numbered_images(3, 2))) == [3, 4]
    assert len(pool.images) == 5
    pool.query(numbered_images(5, 4))
    assert len(pool.images) == 5


def test_full_pool_swaps_about_half_with_stored_older_images() -> None:
    torch.manual_seed(0)
    pool = ImagePool(10)
    pool.query(numbered_images(0, 10))
    seen = set(range(10))
    swapped = total = 0
    for step in range(200):
        batch = numbered_images(10 + 4 * step, 4)
        out = ids(pool.query(batch))
        for got, new in zip(out, ids(batch)):
            total += 1
            if got != new:
                swapped += 1
                assert got in seen  # an older image that was stored, never an invented one
            seen.add(new)  # images go in one by one, so a later one in the batch can get it back
        stored = ids(torch.stack(pool.images))
        assert len(stored) == 10 and len(set(stored)) == 10
    assert 0.45 < swapped / total < 0.55


def test_output_is_detached_and_stored_copies_are_independent() -> None:
    pool = ImagePool(2)
    images = numbered_images(0, 2).requires_grad_()
    out = pool.query(images * 1.0)
    assert not out.requires_grad
    out.zero_()
    assert ids(torch.stack(pool.images)) == [0, 1]


def test_draws_follow_torch_global_seed() -> None:
    def run() -> list[int]:
        torch.manual_seed(123)
        pool = ImagePool(4)
        return [i for step in range(20) for i in ids(pool.query(numbered_images(3 * step, 3)))]

    assert run() == run()


def test_state_dict_round_trip_resumes_identically(tmp_path) -> None:
    torch.manual_seed(7)
    pool = ImagePool(6)
    for step in range(5):
        pool.query(numbered_images(4 * step, 4))
    path = tmp_path / "pool.pt"
    torch.save({"pool": pool.state_dict(), "rng": torch.get_rng_state()}, path)
    expected = [ids(pool.query(numbered_images(100 + 4 * step, 4))) for step in range(10)]

    saved = torch.load(path, weights_only=True)
    resumed = ImagePool(6)
    resumed.load_state_dict(saved["pool"])
    torch.set_rng_state(saved["rng"])
    assert saved["pool"]["images"].shape == (6, 1, 4, 4)
    assert [ids(resumed.query(numbered_images(100 + 4 * step, 4))) for step in range(10)] == expected


def test_load_keeps_at_most_pool_size_images() -> None:
    pool = ImagePool(3)
    pool.load_state_dict({"images": numbered_images(0, 5)})
    assert ids(torch.stack(pool.images)) == [0, 1, 2]


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError):
        ImagePool(-1)

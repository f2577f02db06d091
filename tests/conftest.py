"""Shared fixtures: real scans from ../shared/real_data (skipped when absent) and tiny volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtrans.io import Volume

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "real_data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Folder of real patient scans (chest CT, brain MR); the test skips when it is absent."""
    if not (REAL_DATA / "lung1_image.nrrd").is_file():
        pytest.skip(f"real scans not found at {REAL_DATA}")
    return REAL_DATA


def rotation_matrix(angles_deg: tuple[float, float, float]) -> np.ndarray:
    """Rotation about x, then y, then z (degrees), as a (3, 3) matrix."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.fixture
def oblique_volume() -> Volume:
    """A small float32 volume with anisotropic spacing and an oblique direction."""
    rng = np.random.default_rng(0)
    return Volume(
        rng.normal(size=(7, 9, 5)).astype(np.float32),
        spacing_mm=(0.7, 1.3, 2.9),
        origin_mm=(-12.5, 30.25, 7.0),
        direction=rotation_matrix((12.0, -7.0, 25.0)),
    )

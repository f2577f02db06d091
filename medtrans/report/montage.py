"""Slices for the per-subject montages: input, synthetic, real and |synthetic - real|.

Volumes are put in LPS index order with `sitk.DICOMOrient` (axis permutations and flips only, no
resampling), so for every scan the displayed planes follow the radiological convention: axial
seen from the feet (patient's right on the image's left, anterior up), coronal seen from the
front (superior up), sagittal with anterior on the left. Slices pass through the centre of mass
of the body (voxels above Otsu's threshold of the reference scan) and are cropped to the body's
bounding box plus a margin. Pixel aspect ratios come from the voxel spacing.

Only voxel values and geometry are used: ``Volume.meta`` (which holds DICOM identity tags for
DICOM inputs) is never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from skimage.filters import threshold_otsu

from medtrans.errors import MedtransError
from medtrans.io import Volume, read_volume
from medtrans.report.collect import RunRecord

PLANES = ("axial", "coronal", "sagittal")
# Display window for CT (HU): air to dense bone.
CT_WINDOW_HU = (-1000.0, 1500.0)
# Upper end of the error map's colour scale (HU); the same for every subject so maps compare.
ERROR_MAX_HU = 500.0
# MR has no absolute scale: display between these percentiles of the body crop.
MR_PERCENTILES = (1.0, 99.5)
BODY_MARGIN_MM = 10.0
# Otsu's threshold is estimated on every n-th voxel along each axis; a body is many voxels wide.
OTSU_STRIDE = 2
# Letters at the (left, top) edge of each plane after LPS ordering (see the module docstring).
EDGE_LETTERS = {"axial": ("R", "A"), "coronal": ("R", "S"), "sagittal": ("A", "S")}


@dataclass(frozen=True)
class Panel:
    """One montage column: three display-ready slices (row 0 at the top) and how to colour them."""

    title: str
    slices: tuple[np.ndarray, np.ndarray, np.ndarray]
    window: tuple[float, float]
    cmap: str


@dataclass(frozen=True)
class Montage:
    """One subject's columns; ``aspects`` are pixel height/width per plane; ``error`` the last |difference|.

    When several runs are shown side by side, their earlier error maps are among ``panels``.
    """

    subject: str
    panels: list[Panel]
    error: Panel | None
    aspects: tuple[float, float, float]
    extents_mm: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    notes: list[str]


@dataclass(frozen=True)
class View:
    """Where to cut an LPS-ordered volume: the centre voxel and the crop along each axis."""

    centre: tuple[int, int, int]
    crop: tuple[slice, slice, slice]


def lps_ordered(vol: Volume) -> Volume:
    """``vol`` with its axes permuted and flipped to the nearest LPS order (voxels unchanged)."""
    return Volume.from_sitk(sitk.DICOMOrient(vol.to_sitk(), "LPS"))


def body_view(array: np.ndarray, spacing_mm: tuple[float, float, float]) -> View:
    """Centre of mass and bounding box (plus margin) of the voxels above Otsu's threshold."""
    sample = array[::OTSU_STRIDE, ::OTSU_STRIDE, ::OTSU_STRIDE]
    if not np.isfinite(sample).all() or sample.min() == sample.max():
        return View(tuple(n // 2 for n in array.shape), (slice(None),) * 3)
    body = array > threshold_otsu(sample)
    if not body.any():
        return View(tuple(n // 2 for n in array.shape), (slice(None),) * 3)
    centre = tuple(int(round(c)) for c in ndimage.center_of_mass(body))
    crop = []
    for axis, n in enumerate(array.shape):
        inside = np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != axis)))
        margin = int(np.ceil(BODY_MARGIN_MM / spacing_mm[axis]))
        crop.append(slice(max(0, inside[0] - margin), min(n, inside[-1] + margin + 1)))
    return View(centre, tuple(crop))


def plane_slices(array: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axial, coronal and sagittal slices of an LPS-ordered (X, Y, Z) array, row 0 at the top."""
    i, j, k = view.centre
    cx, cy, cz = view.crop
    axial = array[cx, cy, k].T
    coronal = array[cx, j, cz].T[::-1]
    sagittal = array[i, cy, cz].T[::-1]
    return axial, coronal, sagittal


def plane_geometry(shape: tuple[int, int, int], view: View, spacing_mm: tuple[float, float, float]
                   ) -> tuple[tuple[float, float, float], tuple[tuple[float, float], ...]]:
    """Pixel aspect (height/width) and (width, height) in mm of the axial, coronal and sagittal crops."""
    size_mm = [len(range(*view.crop[a].indices(shape[a]))) * spacing_mm[a] for a in range(3)]
    sx, sy, sz = spacing_mm
    aspects = (sy / sx, sz / sx, sz / sy)
    extents = ((size_mm[0], size_mm[1]), (size_mm[0], size_mm[2]), (size_mm[1], size_mm[2]))
    return aspects, extents


def display_window(array: np.ndarray, modality: str) -> tuple[float, float]:
    """Grey-level window: the fixed CT window for CT, body-crop percentiles otherwise."""
    if modality == "ct":
        return CT_WINDOW_HU
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, MR_PERCENTILES))
    return (low, high) if high > low else (low, low + 1.0)


def column_modalities(run: RunRecord, record: dict) -> tuple[str, str]:
    """(input, synthetic) modality of a subject: MR -> CT when paired, from its domain when unpaired."""
    if run.mode == "paired":
        return "mr", "ct"
    modality_a = str(run.setting("data", "modality_a", "mr"))
    modality_b = str(run.setting("data", "modality_b", "ct"))
    return (modality_b, modality_a) if record.get("domain") == "b" else (modality_a, modality_b)


def subject_sources(run: RunRecord, subject: str, predicted_by: dict[str, RunRecord]
                    ) -> tuple[dict[str, Path], list[str]]:
    """Paths of a subject's input, real and predicted scans (one per ``predicted_by`` column); what is missing."""
    record = run.records.get(subject)
    notes = []
    sources: dict[str, Path] = {}
    if record is None:
        notes.append("not in the preprocessing manifest: no input or real scan")
    elif run.mode == "paired":
        if record.get("mr_on_ct"):
            sources["input"] = run.preprocessed_dir / str(record["mr_on_ct"])
        else:
            notes.append("no 'mr_on_ct' in the manifest: no input MR on the CT grid")
        real = (record.get("inputs") or {}).get("ct")
        if real:
            sources["real"] = Path(real)
        else:
            notes.append("no real CT in the manifest")
    else:
        image = (record.get("inputs") or {}).get("image")
        if image:
            sources["input"] = Path(image)
    for role, predicting_run in predicted_by.items():
        if subject in predicting_run.predictions:
            sources[role] = predicting_run.predictions[subject]
        else:
            notes.append(f"{role}: no prediction yet")
    return sources, notes


def read_sources(sources: dict[str, Path], notes: list[str]) -> dict[str, Volume]:
    """The readable volumes among ``sources``, in LPS order; an unreadable one adds a note (no path)."""
    volumes = {}
    for role, path in sources.items():
        try:
            volumes[role] = lps_ordered(read_volume(path, allow_nonfinite=True))
        except MedtransError:
            # The path may name the patient; the note says only which scan is missing.
            notes.append(f"{role} scan could not be read")
    return volumes


def subject_montage(run: RunRecord, subject: str, predicted_by: dict[str, RunRecord] | None = None) -> Montage:
    """The montage of one test subject: input, each prediction, real, then each |prediction - real|.

    Args:
        run: the run whose manifest gives the input and real scans (and whose prediction is shown by default).
        subject: the subject ID.
        predicted_by: column name -> run whose prediction fills that column, to show several runs side
            by side; default ``{"synthetic": run}``. Names must differ from 'input' and 'real'.

    Returns:
        The montage; without panels, only notes, when none of the subject's scans can be read.
    """
    predicted_by = predicted_by or {"synthetic": run}
    sources, notes = subject_sources(run, subject, predicted_by)
    volumes = read_sources(sources, notes)
    if not volumes:
        return Montage(subject, [], None, (1.0, 1.0, 1.0), ((1.0, 1.0),) * 3, notes)
    input_modality, synthetic_modality = column_modalities(run, run.records.get(subject, {}))
    modalities = {"input": input_modality, "real": synthetic_modality,
                  **dict.fromkeys(predicted_by, synthetic_modality)}
    reference = volumes.get("real") or volumes.get("input") or next(iter(volumes.values()))
    view = body_view(reference.array, reference.spacing_mm)
    panels = []
    for role in ("input", *predicted_by, "real"):
        if role not in volumes:
            continue
        vol = volumes[role]
        if vol.shape != reference.shape:
            notes.append(f"{role} is on another grid than the reference scan; shown through its own centre")
        own_view = view if vol.shape == reference.shape else body_view(vol.array, vol.spacing_mm)
        slices = plane_slices(vol.array, own_view)
        window = display_window(vol.array[own_view.crop], modalities[role])
        panels.append(Panel(f"{role} ({modalities[role].upper()})", slices, window, "gray"))
    errors = [panel for role in predicted_by if (panel := error_panel(role, volumes, notes, view)) is not None]
    aspects, extents = plane_geometry(reference.shape, view, reference.spacing_mm)
    # All error maps share one colour scale, so only the last one needs the colour bar that
    # `figures.montage_figure` draws for ``Montage.error``; the others are ordinary columns.
    return Montage(subject, panels + errors[:-1], errors[-1] if errors else None, aspects, extents, notes)


def error_panel(role: str, volumes: dict[str, Volume], notes: list[str], view: View) -> Panel | None:
    """|prediction - real| in HU through the same slices; None without both or on different grids."""
    synthetic, real = volumes.get(role), volumes.get("real")
    if synthetic is None or real is None:
        return None
    if not synthetic.same_grid(real, tol=1e-3):
        notes.append(f"{role} and real CT are on different grids: no error map")
        return None
    error = np.abs(synthetic.array.astype(np.float32) - real.array.astype(np.float32))
    return Panel(f"|{role} - real| (HU)", plane_slices(error, view), (0.0, ERROR_MAX_HU), "magma")

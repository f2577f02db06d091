"""Read and write DICOM series: one 3D `Volume` per SeriesInstanceUID, with exact geometry.

Reading scans the headers of every file under a folder (pydicom, without pixels), skips files
that are not DICOM images (README.txt, DICOMDIR, structure sets), groups the images by
SeriesInstanceUID, checks that the chosen series stacks into one regular grid and then reads the
pixels in slice order, applying each file's RescaleSlope/RescaleIntercept (modality LUT).

Slice order: slices are sorted by their position along the slice normal (the cross product of
the ImageOrientationPatient row and column directions), whatever the file names. The k axis runs
along the normal, except when InstanceNumber decreases along it: then k follows InstanceNumber,
so a left-handed volume written by `write_dicom_series` reads back with the same array and
direction.

Example:
    >>> vol = read_dicom_series("scans/patient7/ct")            # doctest: +SKIP
    >>> write_dicom_series(vol, "out/sct", modality="CT")       # doctest: +SKIP
"""

from __future__ import annotations

import copy
import datetime
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds
from tqdm import tqdm

import medtrans
from medtrans.errors import MedtransError, VolumeReadError
from medtrans.io.atomic import atomic_path
from medtrans.io.volume import Volume

# Patient and study tags: copied from a source series only on request (``identity``), read into
# ``meta["dicom_identity"]``, never printed.
IDENTITY_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "PatientSize", "PatientWeight", "StudyInstanceUID", "StudyID", "StudyDate", "StudyTime",
    "StudyDescription", "AccessionNumber", "ReferringPhysicianName",
)
ANONYMOUS = "ANONYMOUS"
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage}
# Largest difference between two files' ImageOrientationPatient cosines still read as one plane.
ORIENTATION_TOLERANCE = 1e-4
# Largest deviation of one slice gap from the mean gap, as a fraction of the mean gap; a missing
# slice doubles a gap, scanner rounding of positions stays far below 1 %.
SLICE_GAP_TOLERANCE = 0.01
# Two slices closer than this along the normal (mm) are at the same position.
SAME_POSITION_MM = 1e-3
# Headroom below the stored integer range when a slope is chosen from the value range, so the
# DS-rounded slope never pushes a value out of range.
STORED_RANGE_FRACTION = 0.99


@dataclass(frozen=True)
class DicomSeriesInfo:
    """One series found in a folder: what `medtrans info` lists and the multi-series error names."""

    series_uid: str
    description: str
    modality: str
    n_files: int

    def line(self) -> str:
        """One human-readable line: UID, modality, file count, description."""
        return f"{self.series_uid}  {self.modality or '?'}  {self.n_files} file(s)  {self.description!r}"


class MultipleSeriesError(VolumeReadError):
    """A folder holds several series and none was chosen; ``series`` lists them."""

    def __init__(self, folder: Path, series: list[DicomSeriesInfo]) -> None:
        self.folder = folder
        self.series = series
        listing = "\n".join(f"  {info.line()}" for info in series)
        super().__init__(
            f"{folder}: holds {len(series)} DICOM series; choose one by SeriesInstanceUID "
            f"(read_volume(..., series_uid=UID) or --series UID):\n{listing}"
        )


@dataclass(frozen=True)
class SliceHeader:
    """A DICOM image file and its header (read without pixel data)."""

    path: Path
    header: Dataset


@dataclass(frozen=True)
class SliceStack:
    """The files of one series in k order and the grid they form (LPS mm)."""

    slices: list[SliceHeader]
    spacing_mm: tuple[float, float, float]
    origin_mm: np.ndarray
    direction: np.ndarray


# ---------------------------------------------------------------------------------------------
# Reading


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> Volume:
    """Read the DICOM series in ``folder`` (searched recursively) into a `Volume` (X, Y, Z).

    Values are in modality units (HU for CT): int16/int32 when every slope and intercept keeps
    them integral, else float32. ``meta`` gets modality, series_uid, series_description, n_files,
    path and ``dicom_identity`` (patient/study tags; never printed by `Volume.describe`).

    Args:
        folder: a folder holding one series, or several with ``series_uid`` naming one.
        series_uid: the SeriesInstanceUID to read when the folder holds several series.

    Raises:
        MultipleSeriesError: several series and no ``series_uid``; the message lists them.
        VolumeReadError: no images, a corrupt or truncated file, a missing slice, mixed
            orientations or sizes; the message names the file.
    """
    folder = Path(folder)
    groups = scan_dicom_folder(folder)
    slices = choose_series(folder, groups, series_uid)
    stack = stack_slices(slices)
    array = read_pixels(stack.slices)
    first = stack.slices[0].header
    meta = {
        "path": str(folder),
        "modality": str(first.get("Modality", "")),
        "series_uid": str(first.get("SeriesInstanceUID", "")),
        "series_description": str(first.get("SeriesDescription", "")),
        "n_files": len(stack.slices),
        "dicom_identity": identity_of(first),
    }
    return Volume(array, stack.spacing_mm, stack.origin_mm, stack.direction, meta)


def list_dicom_series(folder: str | Path) -> list[DicomSeriesInfo]:
    """The image series found under ``folder``, sorted by UID."""
    return series_infos(scan_dicom_folder(Path(folder)))


def series_infos(groups: dict[str, list[SliceHeader]]) -> list[DicomSeriesInfo]:
    """One `DicomSeriesInfo` per group of slices, sorted by UID."""
    return [
        DicomSeriesInfo(uid, str(files[0].header.get("SeriesDescription", "")),
                        str(files[0].header.get("Modality", "")), len(files))
        for uid, files in sorted(groups.items())
    ]


def scan_dicom_folder(folder: Path) -> dict[str, list[SliceHeader]]:
    """Headers of the DICOM image files under ``folder``, grouped by SeriesInstanceUID.

    Raises:
        VolumeReadError: the folder is missing or holds no DICOM image, or a file that claims to
            be DICOM (preamble or suffix) cannot be parsed.
    """
    if not folder.is_dir():
        raise VolumeReadError(f"{folder}: folder not found")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not is_hidden(p, folder))
    if not files:
        raise VolumeReadError(f"{folder}: folder is empty; expected the files of a DICOM series")
    groups: dict[str, list[SliceHeader]] = {}
    skipped: list[str] = []
    for path in tqdm(files, desc="DICOM headers", unit="file", disable=None, leave=False):
        header = read_image_header(path)
        if header is None:
            skipped.append(path.name)
            continue
        groups.setdefault(str(header.get("SeriesInstanceUID", "")), []).append(SliceHeader(path, header))
    if not groups:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        raise VolumeReadError(f"{folder}: no DICOM image files found ({len(skipped)} other file(s) skipped: {shown})")
    return groups


def is_hidden(path: Path, root: Path) -> bool:
    """True when a part of ``path`` below ``root`` starts with a dot (temporary or system files)."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def read_image_header(path: Path) -> Dataset | None:
    """The header of a DICOM image file; None for a file that is not a DICOM image.

    Raises:
        VolumeReadError: the file claims to be DICOM (``DICM`` preamble or a DICOM suffix) but
            cannot be parsed, or is an image SOP class without image attributes.
    """
    try:
        claims_dicom = has_dicom_preamble(path) or path.suffix.lower() in DICOM_SUFFIXES
    except OSError as err:
        raise VolumeReadError(f"{path}: cannot open: {err.strerror or err}") from None
    if not claims_dicom:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns on odd but readable headers
            header = pydicom.dcmread(path, stop_before_pixels=True)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise VolumeReadError(f"{path}: corrupt DICOM file, cannot parse its header: {err}") from None
    sop_class = str(header.get("SOPClassUID", "") or header.file_meta.get("MediaStorageSOPClassUID", ""))
    if not sop_class or "TransferSyntaxUID" not in header.file_meta:
        raise VolumeReadError(f"{path}: corrupt DICOM file: no SOP class or transfer syntax in its header")
    if "Rows" in header and "Columns" in header:
        return header
    if "Image Storage" in UID(sop_class).name:
        raise VolumeReadError(f"{path}: corrupt or truncated DICOM image: no Rows/Columns in its header")
    return None  # DICOMDIR, structure sets, reports: not images


def has_dicom_preamble(path: Path) -> bool:
    """True when the file has the DICOM part-10 'DICM' marker at byte 128."""
    with path.open("rb") as stream:
        return stream.read(132)[128:] == b"DICM"


def choose_series(folder: Path, groups: dict[str, list[SliceHeader]], series_uid: str | None) -> list[SliceHeader]:
    """The slices of the requested series, or of the only one."""
    if series_uid is not None:
        if series_uid not in groups:
            listing = "\n".join(f"  {info.line()}" for info in series_infos(groups))
            raise VolumeReadError(f"{folder}: no series with SeriesInstanceUID {series_uid}; found:\n{listing}")
        return groups[series_uid]
    if len(groups) > 1:
        raise MultipleSeriesError(folder, series_infos(groups))
    return next(iter(groups.values()))


def stack_slices(slices: list[SliceHeader]) -> SliceStack:
    """Check that the slices form one regular grid and order them along k.

    Raises:
        VolumeReadError: missing geometry tags, mixed sizes or orientations, multi-frame files,
            two slices at one position, uneven gaps (a missing slice) or a sheared stack.
    """
    for item in slices:
        check_slice_header(item)
    check_same_plane(slices)
    row, col = orientation_of(slices[0])
    normal = np.cross(row, col)
    positions = np.array([position_of(item) for item in slices])
    order = np.argsort(positions @ normal, kind="stable")
    check_distinct_positions([slices[i] for i in order], positions[order] @ normal)
    if instance_numbers_decrease([slices[i] for i in order]):
        order = order[::-1]
    ordered = [slices[i] for i in order]
    positions = positions[order]
    pixel_spacing = [float(v) for v in ordered[0].header.PixelSpacing]
    if len(ordered) == 1:
        return SliceStack(ordered, (pixel_spacing[1], pixel_spacing[0], single_slice_spacing(ordered[0])),
                          positions[0], np.column_stack([row, col, normal]))
    along = (positions - positions[0]) @ normal
    mean_gap = along[-1] / (len(ordered) - 1)
    check_even_gaps(ordered, np.diff(along))
    check_stacked_along_normal(ordered, positions, along, normal, mean_gap)
    direction = np.column_stack([row, col, np.sign(mean_gap) * normal]) + 0.0  # + 0.0 drops negative zeros
    return SliceStack(ordered, (pixel_spacing[1], pixel_spacing[0], abs(mean_gap)), positions[0], direction)


def check_slice_header(item: SliceHeader) -> None:
    """Refuse an image without the tags that place it in space, or with several frames or samples."""
    header = item.header
    missing = [tag for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
               if tag not in header or header.get(tag) in (None, "")]
    if missing:
        raise VolumeReadError(
            f"{item.path}: DICOM image lacks {', '.join(missing)}; it cannot be placed in a 3D volume "
            f"(modality {header.get('Modality', '?')}: a projection or secondary capture?)"
        )
    if int(header.get("NumberOfFrames", 1) or 1) > 1:
        raise VolumeReadError(
            f"{item.path}: multi-frame (enhanced) DICOM with {header.NumberOfFrames} frames is not supported; "
            "convert it to a classic one-file-per-slice series or to NIfTI first"
        )
    if int(header.get("SamplesPerPixel", 1)) != 1:
        raise VolumeReadError(
            f"{item.path}: expected one sample per pixel, got {header.SamplesPerPixel} (colour image?)"
        )


def check_same_plane(slices: list[SliceHeader]) -> None:
    """Refuse a series whose files differ in size, pixel spacing or orientation."""
    first = slices[0]
    reference = (int(first.header.Rows), int(first.header.Columns),
                 np.asarray(first.header.PixelSpacing, float), np.asarray(first.header.ImageOrientationPatient, float))
    for item in slices[1:]:
        header = item.header
        if (int(header.Rows), int(header.Columns)) != reference[:2]:
            raise VolumeReadError(
                f"{item.path}: image size {header.Rows}x{header.Columns} differs from {first.path.name} "
                f"({reference[0]}x{reference[1]}) in the same series"
            )
        if not np.allclose(np.asarray(header.PixelSpacing, float), reference[2], rtol=1e-4, atol=1e-5):
            raise VolumeReadError(
                f"{item.path}: PixelSpacing {list(header.PixelSpacing)} differs from {first.path.name} "
                f"({reference[2].tolist()}) in the same series"
            )
        if np.abs(np.asarray(header.ImageOrientationPatient, float) - reference[3]).max() > ORIENTATION_TOLERANCE:
            raise VolumeReadError(
                f"{item.path}: ImageOrientationPatient differs from {first.path.name}: the series mixes "
                "image planes (a localizer or multi-plane series?) and cannot be stacked into one volume"
            )


def orientation_of(item: SliceHeader) -> tuple[np.ndarray, np.ndarray]:
    """Unit row and column directions (LPS) of a slice: the i and j axes."""
    cosines = np.asarray(item.header.ImageOrientationPatient, dtype=np.float64)
    row, col = cosines[:3], cosines[3:]
    if len(cosines) != 6 or np.linalg.norm(row) < 0.5 or np.linalg.norm(col) < 0.5:
        raise VolumeReadError(f"{item.path}: invalid ImageOrientationPatient {cosines.tolist()}")
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    if abs(row @ col) > ORIENTATION_TOLERANCE * 10:
        raise VolumeReadError(f"{item.path}: ImageOrientationPatient row and column are not perpendicular")
    return row, col


def position_of(item: SliceHeader) -> np.ndarray:
    """ImagePositionPatient (LPS mm) of a slice."""
    position = np.asarray(item.header.ImagePositionPatient, dtype=np.float64)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise VolumeReadError(f"{item.path}: invalid ImagePositionPatient {position.tolist()}")
    return position


def check_distinct_positions(ordered: list[SliceHeader], along: np.ndarray) -> None:
    """Refuse two slices at one position (several echoes, phases or duplicated files)."""
    for index in np.flatnonzero(np.diff(along) < SAME_POSITION_MM):
        raise VolumeReadError(
            f"{ordered[index + 1].path}: same slice position as {ordered[index].path.name} "
            f"({along[index]:.3f} mm along the normal); the series holds several echoes, phases or "
            "duplicated files and is not one volume"
        )


def instance_numbers_decrease(ordered: list[SliceHeader]) -> bool:
    """True when every slice has an InstanceNumber and they strictly decrease along the normal."""
    numbers = [item.header.get("InstanceNumber") for item in ordered]
    if len(numbers) < 2 or any(n is None or n == "" for n in numbers):
        return False
    return bool(np.all(np.diff(np.asarray(numbers, dtype=np.float64)) < 0))


def single_slice_spacing(item: SliceHeader) -> float:
    """Slice spacing (mm) of a one-slice series: SpacingBetweenSlices, else SliceThickness, else 1."""
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        value = item.header.get(tag)
        if value not in (None, "") and float(value) > 0:
            return float(value)
    return 1.0


def check_even_gaps(ordered: list[SliceHeader], gaps: np.ndarray) -> None:
    """Refuse uneven slice gaps, naming the files around the first odd gap (a missing slice?).

    Gaps are compared with the median gap, so one missing slice is pinned to its neighbours.
    """
    typical = float(np.median(gaps))
    odd = np.flatnonzero(np.abs(gaps - typical) > SLICE_GAP_TOLERANCE * abs(typical))
    if odd.size:
        index = int(odd[0])
        raise VolumeReadError(
            f"{ordered[index + 1].path}: uneven slice spacing: {abs(gaps[index]):.4g} mm from "
            f"{ordered[index].path.name} to {ordered[index + 1].path.name}, typical gap {abs(typical):.4g} mm "
            f"({odd.size} uneven gap(s) in {len(ordered)} files); a slice is missing or the series mixes "
            "acquisitions"
        )


def check_stacked_along_normal(ordered: list[SliceHeader], positions: np.ndarray, along: np.ndarray,
                               normal: np.ndarray, mean_gap: float) -> None:
    """Refuse slices that shift in-plane from one to the next (gantry tilt): `Volume` has no shear."""
    in_plane = positions - positions[0] - np.outer(along, normal)
    offsets = np.linalg.norm(in_plane, axis=1)
    worst = int(np.argmax(offsets))
    if offsets[worst] > SLICE_GAP_TOLERANCE * abs(mean_gap) + SAME_POSITION_MM:
        raise VolumeReadError(
            f"{ordered[worst].path}: slice is shifted {offsets[worst]:.3g} mm in-plane from {ordered[0].path.name}; "
            "the stack is sheared (gantry tilt?) and must be resampled before use"
        )


def read_pixels(ordered: list[SliceHeader]) -> np.ndarray:
    """The series' values in modality units, shape (X, Y, Z) = (Columns, Rows, slices)."""
    first = ordered[0].header
    integral = all(rescale_is_integral(item.header) for item in ordered)
    array = np.empty((int(first.Columns), int(first.Rows), len(ordered)), np.int32 if integral else np.float32)
    for k, item in enumerate(tqdm(ordered, desc="DICOM pixels", unit="slice", disable=None, leave=False)):
        values = slice_values(item)
        if values.shape != (int(first.Rows), int(first.Columns)):
            raise VolumeReadError(f"{item.path}: pixel data shape {values.shape} does not match Rows x Columns")
        array[:, :, k] = values.T
    if integral and array.size and np.iinfo(np.int16).min <= array.min() and array.max() <= np.iinfo(np.int16).max:
        return array.astype(np.int16)
    return array


def rescale_is_integral(header: Dataset) -> bool:
    """True when the header maps stored integers to integers (integral slope/intercept, no LUT)."""
    if "ModalityLUTSequence" in header:
        return False
    slope = float(header.get("RescaleSlope", 1) or 1)
    intercept = float(header.get("RescaleIntercept", 0) or 0)
    return slope.is_integer() and intercept.is_integer()


def slice_values(item: SliceHeader) -> np.ndarray:
    """One file's pixels in modality units, shape (Rows, Columns).

    pydicom decodes what it can; compressed syntaxes it has no plugin for (JPEG lossless,
    JPEG-LS) go through SimpleITK's GDCM, which applies the rescale itself.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(item.path)
            stored = dataset.pixel_array
    except (RuntimeError, NotImplementedError):
        return slice_values_with_gdcm(item.path)
    except (InvalidDicomError, OSError, EOFError, ValueError, AttributeError, KeyError) as err:
        raise VolumeReadError(f"{item.path}: corrupt or truncated DICOM pixel data: {err}") from None
    return apply_modality_lut(stored, dataset)


def slice_values_with_gdcm(path: Path) -> np.ndarray:
    """One file's pixels in modality units, decoded by SimpleITK (GDCM), shape (Rows, Columns)."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
        raise VolumeReadError(f"{path}: cannot decode the DICOM pixel data: {reason}") from None
    return sitk.GetArrayFromImage(image).reshape(image.GetHeight(), image.GetWidth())


def identity_of(header: Dataset) -> dict[str, str]:
    """The patient/study tags of a header that have a value, as strings."""
    return {
        keyword: str(header.get(keyword))
        for keyword in IDENTITY_KEYWORDS
        if header.get(keyword) not in (None, "")
    }


# ---------------------------------------------------------------------------------------------
# Writing


@dataclass(frozen=True)
class Rescale:
    """How values map to stored integers: value = stored * slope + intercept (DS strings as written)."""

    slope: str
    intercept: str
    stored_dtype: type

    def to_stored(self, values: np.ndarray) -> np.ndarray:
        """Stored integers for ``values`` (rounded to the nearest, clipped to the stored type)."""
        info = np.iinfo(self.stored_dtype)
        stored = np.rint((np.asarray(values, np.float64) - float(self.intercept)) / float(self.slope))
        return np.clip(stored, info.min, info.max).astype(self.stored_dtype)


def write_dicom_series(
    vol: Volume,
    folder: str | Path,
    modality: str = "CT",
    series_description: str = "medtrans synthetic",
    identity: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``vol`` as a new DICOM series (one file per k slice) into ``folder``, atomically.

    CT is stored as int16 with RescaleSlope 1 and RescaleIntercept -1024 (values rounded to whole
    HU; another intercept, or a slope from the range, only when HU exceed int16); MR as uint16 with slope 1 when its
    values are integers that fit, otherwise a slope chosen from its range (error <= slope / 2).
    Every UID is new. Patient and study tags come only from ``identity`` (keys from
    `IDENTITY_KEYWORDS`, e.g. ``vol.meta["dicom_identity"]``); without it the patient is
    ANONYMOUS and a new study is created.

    Args:
        vol: the volume; its geometry becomes ImagePositionPatient/ImageOrientationPatient.
        folder: the series folder; created, or replaced when ``overwrite``.
        modality: "CT" or "MR".
        series_description: SeriesDescription of the new series.
        identity: patient/study tags to copy, or None for an anonymous new study.
        overwrite: replace a non-empty existing folder instead of refusing.

    Returns:
        ``folder`` as a Path.

    Raises:
        MedtransError: ``folder`` is a file or a non-empty folder (without ``overwrite``), or the
            volume has NaN/Inf voxels.
        ValueError: unknown modality or identity keyword.
    """
    folder = Path(folder)
    if modality not in SOP_CLASSES:
        raise ValueError(f"modality must be one of {sorted(SOP_CLASSES)}, got {modality!r}")
    unknown = sorted(set(identity or {}) - set(IDENTITY_KEYWORDS))
    if unknown:
        raise ValueError(f"identity keys {unknown} are not patient/study tags; allowed: {', '.join(IDENTITY_KEYWORDS)}")
    check_output_folder(folder, overwrite)
    check_writable_volume(vol, folder)
    rescale = choose_rescale(vol.array, modality)
    common = series_dataset(vol, modality, series_description, identity or {}, rescale)
    width = max(4, len(str(vol.shape[2])))
    displaced: Path | None = None
    try:
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            for k in tqdm(range(vol.shape[2]), desc="DICOM slices", unit="slice", disable=None, leave=False):
                slice_dataset(common, vol, k, rescale).save_as(tmp / f"slice_{k + 1:0{width}d}.dcm",
                                                               enforce_file_format=True)
            displaced = move_aside(folder)
    except BaseException:
        if displaced is not None and not folder.exists():
            os.replace(displaced, folder)
        raise
    if displaced is not None:
        shutil.rmtree(displaced, ignore_errors=True)
    return folder


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """Refuse to write into a file or, without ``overwrite``, into a non-empty folder."""
    if folder.exists() and not folder.is_dir():
        raise MedtransError(f"{folder}: exists and is not a folder; a DICOM series is written as a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise MedtransError(f"{folder}: folder is not empty; choose a new folder or pass overwrite=True")


def check_writable_volume(vol: Volume, folder: Path) -> None:
    """Refuse volumes DICOM cannot hold: NaN/Inf voxels, slices over 65535 pixels a side."""
    if vol.array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(vol.array)))
        if bad:
            raise MedtransError(f"{folder}: cannot write {bad} NaN/Inf voxel(s) to DICOM; fix or mask them first")
    if max(vol.shape[:2]) > np.iinfo(np.uint16).max:
        raise MedtransError(f"{folder}: slices of {vol.shape[0]}x{vol.shape[1]} exceed DICOM's 65535 rows/columns")


def move_aside(folder: Path) -> Path | None:
    """Rename an existing ``folder`` to a hidden name beside it; return that name (None if absent)."""
    if not folder.exists():
        return None
    aside = folder.with_name(f".old-{uuid.uuid4().hex[:8]}-{folder.name}")
    os.replace(folder, aside)
    return aside


def choose_rescale(values: np.ndarray, modality: str) -> Rescale:
    """Stored type, slope and intercept for ``values``: exact for integers that fit, else by range."""
    low, high = float(values.min()), float(values.max())
    if modality == "CT":
        low_hu, high_hu = float(np.rint(low)), float(np.rint(high))
        if -32768 <= low_hu + 1024 and high_hu + 1024 <= 32767:
            return Rescale("1", "-1024", np.int16)
        if high_hu - low_hu <= np.iinfo(np.uint16).max:  # whole HU still fit, with another intercept
            return Rescale("1", ds_string(low_hu + 32768), np.int16)
        return range_rescale(low, high, np.int16)
    integral = values.dtype.kind in "biu" or bool(np.all(np.mod(values, 1) == 0))
    if integral and high - low <= np.iinfo(np.uint16).max:
        return Rescale("1", ds_string(low if low < 0 or high > np.iinfo(np.uint16).max else 0.0), np.uint16)
    return range_rescale(low, high, np.uint16)


def range_rescale(low: float, high: float, stored_dtype: type) -> Rescale:
    """A slope spreading [low, high] over the stored integer range (with headroom)."""
    info = np.iinfo(stored_dtype)
    slope = (high - low) / (STORED_RANGE_FRACTION * (float(info.max) - float(info.min))) if high > low else 1.0
    slope_text = ds_string(float(f"{slope:.8g}"))
    middle_stored = (float(info.max) + float(info.min)) / 2
    return Rescale(slope_text, ds_string((low + high) / 2 - middle_stored * float(slope_text)), stored_dtype)


def ds_string(value: float) -> str:
    """``value`` as a DICOM decimal string (at most 16 characters)."""
    return format_number_as_ds(float(value))


def series_dataset(vol: Volume, modality: str, description: str, identity: dict[str, Any], rescale: Rescale) -> Dataset:
    """The tags shared by every slice of a new series (no per-slice position, UID or pixels)."""
    now = datetime.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SOP_CLASSES[modality]
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Modality = modality
    ds.Manufacturer = "medtrans"
    ds.SoftwareVersions = medtrans.__version__
    ds.SeriesInstanceUID = generate_uid()
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.BurnedInAnnotation = "NO"
    set_identity(ds, identity)
    set_modality_tags(ds, modality)
    set_pixel_format(ds, vol, rescale, modality)
    return ds


def set_identity(ds: Dataset, identity: dict[str, Any]) -> None:
    """Patient/study tags from ``identity``; an anonymous patient and a new study otherwise."""
    ds.PatientName = ANONYMOUS
    ds.PatientID = ANONYMOUS
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyInstanceUID = generate_uid()
    ds.StudyID = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    for keyword, value in identity.items():
        setattr(ds, keyword, str(value))
    if not identity:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "medtrans: no patient or study tags copied"


def set_modality_tags(ds: Dataset, modality: str) -> None:
    """Type-2 acquisition tags the CT and MR image IODs require (empty: the image is synthetic)."""
    if modality == "CT":
        ds.KVP = ""
        ds.AcquisitionNumber = 1
    else:
        ds.ScanningSequence = "RM"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "3D"
        ds.RepetitionTime = ""
        ds.EchoTime = ""
        ds.EchoTrainLength = ""


def set_pixel_format(ds: Dataset, vol: Volume, rescale: Rescale, modality: str) -> None:
    """Image-plane and image-pixel tags shared by all slices."""
    spacing_x, spacing_y, spacing_z = vol.spacing_mm
    ds.Rows, ds.Columns = vol.shape[1], vol.shape[0]
    ds.PixelSpacing = [ds_string(spacing_y), ds_string(spacing_x)]  # row spacing (along j) first
    ds.SliceThickness = ds_string(spacing_z)
    ds.SpacingBetweenSlices = ds_string(spacing_z)
    ds.ImageOrientationPatient = [ds_string(v) for v in np.concatenate([vol.direction[:, 0], vol.direction[:, 1]])]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if np.iinfo(rescale.stored_dtype).min < 0 else 0
    ds.RescaleIntercept = rescale.intercept
    ds.RescaleSlope = rescale.slope
    ds.RescaleType = "HU" if modality == "CT" else "US"


def slice_dataset(common: Dataset, vol: Volume, k: int, rescale: Rescale) -> Dataset:
    """The dataset of slice ``k``: ``common`` plus its UID, number, position and pixels."""
    ds = copy.deepcopy(common)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = k + 1
    position = vol.index_to_world((0.0, 0.0, float(k)))
    ds.ImagePositionPatient = [ds_string(v) for v in position]
    ds.SliceLocation = ds_string(position @ np.cross(vol.direction[:, 0], vol.direction[:, 1]))
    little_endian = np.dtype(rescale.stored_dtype).newbyteorder("<")
    ds.PixelData = rescale.to_stored(vol.array[:, :, k]).T.astype(little_endian).tobytes()
    return ds

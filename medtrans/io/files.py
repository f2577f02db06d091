"""Read and write single-file volumes (NIfTI, MetaImage, NRRD) and dispatch DICOM folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medtrans.errors import VolumeReadError
from medtrans.io.atomic import atomic_path
from medtrans.io.volume import Volume

READ_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
# .mhd is not written: its separate .raw file would escape the atomic rename.
WRITE_SUFFIXES = (".nii", ".nii.gz", ".mha", ".nrrd")


def volume_suffix(path: str | Path) -> str:
    """The format suffix of ``path`` ('.nii.gz' counts as one), lower case."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def is_volume_file(path: str | Path) -> bool:
    """True for a file whose suffix medtrans reads as a single-file volume."""
    return Path(path).is_file() and volume_suffix(path) in READ_SUFFIXES


def check_volume(vol: Volume, source: str | Path, allow_nonfinite: bool = False) -> Volume:
    """Refuse volumes no stage can use: bad spacing, NaN/Inf voxels, empty arrays."""
    if any(not np.isfinite(s) or s <= 0 for s in vol.spacing_mm):
        raise VolumeReadError(f"{source}: spacing must be positive, got {vol.spacing_mm} mm")
    if vol.array.size == 0:
        raise VolumeReadError(f"{source}: the volume has no voxels (shape {vol.shape})")
    if abs(abs(np.linalg.det(vol.direction)) - 1.0) > 1e-3:
        raise VolumeReadError(f"{source}: direction matrix is not orthonormal: {vol.direction.tolist()}")
    if not allow_nonfinite and vol.array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(vol.array)))
        if bad:
            raise VolumeReadError(f"{source}: {bad} voxel(s) are NaN or Inf; fix or mask them before use")
    return vol


def read_image_file(path: Path) -> Volume:
    """Read one NIfTI / MetaImage / NRRD file with SimpleITK."""
    if not path.exists():
        raise VolumeReadError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VolumeReadError(f"{path}: file is empty")
    if volume_suffix(path) not in READ_SUFFIXES:
        raise VolumeReadError(
            f"{path}: unsupported file type; medtrans reads {', '.join(READ_SUFFIXES)} files and DICOM folders"
        )
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        dims = reader.GetSize()
        if len(dims) == 4 and dims[3] == 1:
            reader.SetExtractSize([dims[0], dims[1], dims[2], 0])
        elif len(dims) != 3:
            raise VolumeReadError(f"{path}: expected a 3D volume, got {len(dims)}D with size {dims}")
        image = reader.Execute()
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
        raise VolumeReadError(f"{path}: cannot read (corrupt or truncated file?): {first}") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeReadError(f"{path}: expected one value per voxel, got {image.GetNumberOfComponentsPerPixel()}")
    return Volume.from_sitk(image, {"path": str(path)})


def read_volume(path: str | Path, series_uid: str | None = None, allow_nonfinite: bool = False) -> Volume:
    """Read a volume file or a DICOM series folder into a `Volume` (array in (X, Y, Z) order).

    Args:
        path: a .nii/.nii.gz/.mha/.mhd/.nrrd file, or a folder holding one DICOM series.
        series_uid: for a folder holding several series, the SeriesInstanceUID to read.
        allow_nonfinite: accept NaN/Inf voxels instead of refusing the file.

    Raises:
        VolumeReadError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if path.is_dir():
        from medtrans.io.dicom import read_dicom_series

        vol = read_dicom_series(path, series_uid=series_uid)
    else:
        vol = read_image_file(path)
    return check_volume(vol, path, allow_nonfinite)


def write_volume(vol: Volume, path: str | Path) -> Path:
    """Write ``vol`` atomically as NIfTI, MetaImage or NRRD, chosen by the suffix of ``path``."""
    path = Path(path)
    if volume_suffix(path) not in WRITE_SUFFIXES:
        raise ValueError(f"{path}: cannot write this format; use one of {', '.join(WRITE_SUFFIXES)}")
    with atomic_path(path) as tmp:
        sitk.WriteImage(vol.to_sitk(), str(tmp), useCompression=volume_suffix(path) in (".nii.gz", ".nrrd", ".mha"))
    return path

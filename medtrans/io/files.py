"""Read and write single-file volumes (NIfTI, MetaImage, NRRD) and dispatch DICOM folders."""

from __future__ import annotations

import errno
import gzip
import io
import warnings
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk
from nibabel.filebasedimages import ImageFileError
from nibabel.openers import ImageOpener
from nibabel.spatialimages import HeaderDataError

from medtrans.errors import VolumeReadError
from medtrans.io.atomic import atomic_path
from medtrans.io.dicom import DICOM_SUFFIXES, read_dicom_series
from medtrans.io.volume import LPS_TO_RAS, Volume

READ_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Largest deviation from orthonormal columns accepted in a NIfTI affine; the float32 header
# fields leave ~1e-7, anything above 1e-4 is a real shear that `Volume` cannot represent.
NIFTI_SHEAR_TOLERANCE = 1e-4
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


def check_readable_file(path: Path) -> None:
    """Refuse a missing, empty or unsupported file before any reader sees it."""
    if not path.exists():
        raise VolumeReadError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise VolumeReadError(f"{path}: file is empty")
    if volume_suffix(path) in DICOM_SUFFIXES:
        raise VolumeReadError(f"{path}: a single DICOM file; pass the folder that holds its series instead")
    if volume_suffix(path) not in READ_SUFFIXES:
        raise VolumeReadError(
            f"{path}: unsupported file type; medtrans reads {', '.join(READ_SUFFIXES)} files and DICOM folders"
        )


def read_image_file(path: Path) -> Volume:
    """Read one NIfTI / MetaImage / NRRD file (NIfTI with nibabel, the others with SimpleITK)."""
    check_readable_file(path)
    if volume_suffix(path) in NIFTI_SUFFIXES:
        return read_nifti(path)
    return read_itk_file(path)


def read_itk_file(path: Path) -> Volume:
    """Read one MetaImage / NRRD file with SimpleITK."""
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


def read_nifti(path: Path) -> Volume:
    """Read a NIfTI-1/2 file with nibabel, so the voxel-to-world mapping is exactly nibabel's ``img.affine``.

    SimpleITK is not used here because it disagrees with nibabel on common files: it prefers the
    qform over a differing sform, mis-reads an oblique sform without a qform, ignores files with
    neither, and cannot open NIfTI-2.
    """
    check_nifti_pixdim(path)
    try:
        img = nib.load(str(path), mmap=False)
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise VolumeReadError(f"{path}: not a NIfTI image (nibabel reads it as {type(img).__name__})")
        array = nifti_array(img, path)
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError, HeaderDataError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise VolumeReadError(f"{path}: cannot read (corrupt or truncated file?): {reason}") from None
    spacing_mm, origin_mm, direction = lps_geometry(nifti_affine(img, path))
    return Volume(array, spacing_mm, origin_mm, direction, {"path": str(path)})


def check_nifti_pixdim(path: Path) -> None:
    """Refuse zero, negative or non-finite voxel sizes in a NIfTI header that has no sform.

    Without an sform the spacing comes from pixdim[1:4]; nibabel silently replaces zeros by 1 mm
    and negatives by their absolute value while loading, so the raw header is checked first.
    A header that cannot be read here is left to nibabel, which reports it.
    """
    try:
        with ImageOpener(str(path), "rb") as stream:
            block = stream.read(nib.Nifti2Header.sizeof_hdr)
    except (OSError, EOFError, zlib.error):
        return
    for klass in (nib.Nifti1Header, nib.Nifti2Header):
        if len(block) >= klass.sizeof_hdr and klass.may_contain_header(block[:klass.sizeof_hdr]):
            header = klass.from_fileobj(io.BytesIO(block), check=False)
            break
    else:
        return
    pixdim_mm = np.asarray(header["pixdim"][1:4], dtype=np.float64)
    if int(header["sform_code"]) == 0 and not np.all(np.isfinite(pixdim_mm) & (pixdim_mm > 0)):
        raise VolumeReadError(
            f"{path}: spacing must be positive, got pixdim {pixdim_mm.tolist()} mm (and no sform to take it "
            "from instead); fix the header's voxel size"
        )


def nifti_array(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """Voxel values (X, Y, Z) with scl_slope/scl_inter applied, in native byte order."""
    shape = img.shape
    if len(shape) < 3 or any(n != 1 for n in shape[3:]):
        raise VolumeReadError(f"{path}: expected a 3D volume, got {len(shape)}D with size {shape}")
    disk_dtype = img.get_data_dtype()
    if disk_dtype.fields is not None or disk_dtype.kind == "c":
        raise VolumeReadError(f"{path}: expected one real value per voxel, got data type {disk_dtype}")
    array = np.asanyarray(img.dataobj).reshape(shape[:3])
    if array.dtype.kind == "f":
        # nibabel scales into float64; float32 is enough for scaled 8/16-bit data (as ITK gives).
        array = array.astype(np.result_type(disk_dtype, np.float32), copy=False)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def nifti_affine(img: nib.Nifti1Image, path: Path) -> np.ndarray:
    """nibabel's RAS affine, or the qform when the sform is sheared (as ITK does); refuse other shears."""
    affine = img.affine
    spacing_mm = np.linalg.norm(affine[:3, :3], axis=0)
    if not np.all(np.isfinite(affine)) or np.any(spacing_mm == 0):
        raise VolumeReadError(f"{path}: spacing must be positive and finite, got {spacing_mm.tolist()} mm")
    if shear_of(affine) <= NIFTI_SHEAR_TOLERANCE:
        return affine
    qform, qform_code = img.get_qform(coded=True)
    if qform is not None and qform_code > 0 and shear_of(qform) <= NIFTI_SHEAR_TOLERANCE:
        warnings.warn(f"{path}: the sform is sheared (shear {shear_of(affine):.2g}); using the qform instead",
                      stacklevel=3)
        return qform
    raise VolumeReadError(
        f"{path}: the voxel-to-world affine is sheared (shear {shear_of(affine):.2g}) and no usable qform "
        "exists; resample it onto a non-sheared grid first"
    )


def shear_of(affine: np.ndarray) -> float:
    """Largest deviation from orthonormality of the (4, 4) affine's normalized columns (0 for rotation x scale)."""
    columns = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    return float(np.abs(columns.T @ columns - np.eye(3)).max())


def lps_geometry(affine_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(spacing_mm, origin_mm, direction) in LPS from a (4, 4) voxel-to-RAS affine."""
    affine_lps = LPS_TO_RAS @ affine_ras[:3]
    spacing_mm = np.linalg.norm(affine_lps[:, :3], axis=0)
    return spacing_mm, affine_lps[:, 3], affine_lps[:, :3] / spacing_mm


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
        vol = read_dicom_series(path, series_uid=series_uid)
    else:
        vol = read_image_file(path)
    return check_volume(vol, path, allow_nonfinite)


def write_volume(vol: Volume, path: str | Path) -> Path:
    """Write ``vol`` atomically as NIfTI, MetaImage or NRRD, chosen by the suffix of ``path``.

    DICOM series are written by `medtrans.io.dicom.write_dicom_series`, which needs a modality.
    """
    path = Path(path)
    if volume_suffix(path) not in WRITE_SUFFIXES:
        raise ValueError(
            f"{path}: cannot write this format; use one of {', '.join(WRITE_SUFFIXES)} "
            "(or medtrans.io.dicom.write_dicom_series for a DICOM folder)"
        )
    with atomic_path(path) as tmp:
        try:
            sitk.WriteImage(vol.to_sitk(), str(tmp), useCompression=volume_suffix(path) in (".nii.gz", ".nrrd", ".mha"))
        except RuntimeError as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
            raise OSError(errno.EIO, f"cannot write the volume (disk full or read-only?): {reason}",
                          str(path)) from None
        if volume_suffix(path) in NIFTI_SUFFIXES:
            check_nifti_complete(tmp, path)
    return path


def check_nifti_complete(written: Path, dest: Path) -> None:
    """Refuse a NIfTI file shorter than its header promises.

    SimpleITK's NIfTI writer only prints a short write (a full disk) to stderr and returns
    normally, so the byte count is checked here, before the file is renamed into place.
    """
    try:
        header = nib.load(str(written)).header
        voxels = int(np.prod(header.get_data_shape()))
        expected = int(header.get_data_offset()) + voxels * header.get_data_dtype().itemsize
        written_bytes = uncompressed_size(written)
    except (OSError, EOFError, ValueError, zlib.error, ImageFileError, HeaderDataError) as err:
        raise OSError(errno.EIO, f"the written NIfTI file is unreadable (disk full?): {err}", str(dest)) from None
    if written_bytes < expected:
        raise OSError(errno.ENOSPC, f"only {written_bytes} of {expected} bytes were written (disk full?)", str(dest))


def uncompressed_size(path: Path) -> int:
    """Size in bytes of a file's content, decompressing a .gz file to count it."""
    if not path.name.lower().endswith(".gz"):
        return path.stat().st_size
    total = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(1 << 22):
            total += len(chunk)
    return total

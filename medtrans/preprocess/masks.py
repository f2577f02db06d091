"""Body masks: threshold, keep the largest connected component, close, fill holes.

CT is thresholded at -500 HU (halfway between air and soft tissue). MR has no absolute scale and
a smooth bias field, so its threshold is a fraction of Otsu's threshold on the median-filtered
image with the brightest 0.5 % clipped: Otsu separates background noise from tissue, and taking
half of it keeps tissue that the bias field darkens by up to half. Lungs, sinuses and dark MR
tissue enclosed by the body are then filled as holes (per axial slice, which catches airways
open to the outside, and in 3D).

Example:
    >>> import numpy as np
    >>> from medtrans.io import Volume
    >>> hu = np.full((20, 20, 10), -1000.0, np.float32); hu[5:15, 5:15, 2:8] = 40.0
    >>> mask = body_mask(Volume(hu, (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3)), "ct")
    >>> int(mask.sum())
    600
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from medtrans.io import Volume

CT_BODY_THRESHOLD_HU = -500.0
MR_OTSU_FRACTION = 0.5
MR_CLIP_PERCENTILE = 99.5
CLOSING_RADIUS_MM = 3.0


def intensity_threshold(image: sitk.Image, modality: str) -> float:
    """The body/background threshold: -500 HU for CT, half of Otsu's threshold for (denoised) MR."""
    if modality == "ct":
        return CT_BODY_THRESHOLD_HU
    if modality != "mr":
        raise ValueError(f"modality must be 'mr' or 'ct', got {modality!r}")
    ceiling = float(np.percentile(sitk.GetArrayViewFromImage(image), MR_CLIP_PERCENTILE))
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetNumberOfHistogramBins(128)
    otsu.Execute(sitk.Clamp(image, upperBound=ceiling))
    return MR_OTSU_FRACTION * otsu.GetThreshold()


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks of the same shape (0 when both are empty)."""
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    return 2.0 * int(np.count_nonzero(np.logical_and(a, b))) / total if total else 0.0


def largest_component(mask: sitk.Image) -> sitk.Image:
    """The largest 26-connected foreground component of a binary image (empty stays empty)."""
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(mask, True), sortByObjectSize=True)
    return sitk.Cast(labels == 1, sitk.sitkUInt8)


def axial_axis(vol: Volume) -> int:
    """Index of the array axis closest to the patient's superior-inferior (world z) direction."""
    return int(np.argmax(np.abs(vol.direction[2, :])))


def fill_holes_per_slice(mask: np.ndarray, axis: int) -> np.ndarray:
    """Fill 2D holes in every slice across ``axis`` (one scipy call with in-plane connectivity)."""
    in_plane = np.expand_dims(ndimage.generate_binary_structure(2, 1), axis)
    return ndimage.binary_fill_holes(mask, structure=in_plane)


def close_and_fill(mask: np.ndarray, radius: list[int], axial: int) -> np.ndarray:
    """Close ``mask`` with a ball of ``radius`` voxels, then fill holes in 3D and per slice across ``axial``.

    Works on the mask's bounding box plus the radius (the same result, as everything outside is
    background), which at 1 mm saves most of the time of the closing.
    """
    if not mask.any():
        return mask
    nonzero = np.nonzero(mask)
    box = tuple(slice(max(0, int(idx.min()) - r), min(n, int(idx.max()) + 1 + r))
                for idx, r, n in zip(nonzero, radius, mask.shape))
    image = sitk.GetImageFromArray(mask[box].transpose(2, 1, 0).astype(np.uint8))
    # Pad before closing so the body touching the border is not eroded by the closing's edge.
    closed = sitk.BinaryMorphologicalClosing(sitk.ConstantPad(image, radius, radius, 0), radius, sitk.sitkBall, 1)
    filled = sitk.BinaryFillhole(sitk.Crop(closed, radius, radius), fullyConnected=False, foregroundValue=1)
    out = np.zeros(mask.shape, dtype=bool)
    out[box] = fill_holes_per_slice(sitk.GetArrayFromImage(filled).transpose(2, 1, 0).astype(bool), axial)
    return out


def body_mask(vol: Volume, modality: str) -> np.ndarray:
    """Boolean body mask of a CT (HU) or MR volume, same shape (X, Y, Z) as ``vol.array``.

    Args:
        vol: the scan; CT in HU, MR in any units.
        modality: 'ct' or 'mr'.

    Returns:
        True inside the body: the largest connected component above the threshold, closed with
        a ~3 mm ball and with holes filled per axial slice and in 3D. All False for a blank scan.
    """
    image = sitk.Cast(vol.to_sitk(), sitk.sitkFloat32)
    if modality == "mr":
        # MR noise is a sizeable fraction of the threshold (CT noise, ~20 HU, is not). A median
        # removes it without moving the body's edge, as a Gaussian would by a voxel outwards.
        image = sitk.Median(image, [1, 1, 1])
    component = largest_component(image > intensity_threshold(image, modality))
    radius = [max(1, int(round(CLOSING_RADIUS_MM / s))) for s in vol.spacing_mm]
    return close_and_fill(sitk.GetArrayFromImage(component).transpose(2, 1, 0).astype(bool), radius, axial_axis(vol))

"""Register an MR onto the CT of the same subject with SimpleITK (Mattes mutual information).

The result is a transform in the ITK convention: it maps a CT (fixed) world point to the MR
(moving) world point of the same anatomy, in LPS mm, so ``resample_to_grid(mr, ct_grid,
transform=t)`` puts the MR on the CT grid. Rigid is the default; 'affine' and 'bspline' refine
the rigid result.

Speed and accuracy: both scans are first resampled to a working grid of at most 2 mm; the
optimizer runs on a pyramid of it (shrink factors [4, 2, 1], coarsest level about 8 mm) with a
seeded random sample of the voxels in the dilated CT body mask (``sampling`` of them, but at
least `MIN_SAMPLES` per level), and a regular-step gradient descent whose parameter scales
are measured over the body (`body_scales`); the rigid start aligns the centres of mass of the
two body masks, which, unlike intensity moments, do not depend on MR or CT contrast. The
optimizer runs on one thread so that a seed gives the same result every time.

Example:
    >>> result = register_mr_to_ct(ct, mr, "rigid")          # doctest: +SKIP
    >>> mr_on_ct = resample_to_grid(mr, ct, "linear", "mr", result.transform)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Iterator, Literal, Optional

import numpy as np
import SimpleITK as sitk

from medtrans.errors import MedtransError
from medtrans.io import Volume
from medtrans.preprocess.masks import body_mask, dice
from medtrans.preprocess.resample import canonical_grid, resample_to_grid

Method = Literal["rigid", "affine", "bspline"]

WORKING_SPACING_MM = 2.0
COARSEST_SPACING_MM = 8.0
SHRINK_FACTORS = (4, 2, 1)
HISTOGRAM_BINS = 50
MIN_SAMPLES = 20000
# Registration intensity ranges: CT from air to dense bone; MR up to a high percentile of the
# body, so a few bright voxels (vessels, fat) do not squeeze the tissue into a few bins.
CT_RANGE_HU = (-1000.0, 1500.0)
MR_CEILING_PERCENTILE = 99.5
SAMPLING_MASK_DILATION_MM = 6.0
INITIAL_STEP_MM = 2.0
MIN_STEP_MM = 0.01
STEP_RELAXATION = 0.7
SCALE_VOXEL_STRIDE = 7
BSPLINE_CONTROL_SPACING_MM = 100.0
BSPLINE_MAX_EVALUATIONS = 50


@dataclasses.dataclass(frozen=True)
class RegistrationResult:
    """A fixed(CT)-to-moving(MR) transform and how well the scans match before and after it.

    Before means the identity (the scans as they lie in the scanner's world). The metric is
    Mattes mutual information as ITK reports it (negative; lower is better), None when the scans
    do not overlap enough to evaluate it; Dice is the overlap of the two body masks.
    """

    transform: sitk.Transform
    method: str
    metric_before: Optional[float]
    metric_after: Optional[float]
    dice_before: float
    dice_after: float


@dataclasses.dataclass(frozen=True)
class WorkingPair:
    """The images the optimizer sees, and how it samples them."""

    fixed: sitk.Image
    moving: sitk.Image
    fixed_mask: sitk.Image
    moving_mask: sitk.Image
    sampling: float
    seed: int

    @functools.cached_property
    def sampling_mask(self) -> Optional[sitk.Image]:
        """The fixed body mask dilated a few mm: samples cover the body and its outline, not the air."""
        if not sitk.GetArrayViewFromImage(self.fixed_mask).any():
            return None
        radius = [max(1, int(round(SAMPLING_MASK_DILATION_MM / s))) for s in self.fixed_mask.GetSpacing()]
        return sitk.BinaryDilate(self.fixed_mask, radius, sitk.sitkBall, 0, 1)

    def pyramid(self, levels: int) -> tuple[list[int], list[float]]:
        """Shrink factors (coarsest about 8 mm) and smoothing sigmas (voxels) of the finest ``levels``."""
        spacing = max(self.fixed.GetSpacing())
        shrinks = [s for s in SHRINK_FACTORS if s == 1 or s * spacing <= COARSEST_SPACING_MM][-levels:]
        return shrinks, [s / 2.0 if s > 1 else 0.0 for s in shrinks]

    def method(self, shrinks: list[int], mask: Optional[sitk.Image]) -> sitk.ImageRegistrationMethod:
        """A registration method with the Mattes metric, seeded random sampling and linear interpolation."""
        candidates = int(sitk.GetArrayViewFromImage(mask).sum()) if mask is not None else self.fixed.GetNumberOfPixels()
        fractions = [min(1.0, max(self.sampling, MIN_SAMPLES * s**3 / max(candidates, 1))) for s in shrinks]
        method = sitk.ImageRegistrationMethod()
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=HISTOGRAM_BINS)
        method.SetMetricSamplingStrategy(method.RANDOM)
        # SimpleITK reads seed 0 as "seed from the wall clock"; shift so every seed is reproducible.
        method.SetMetricSamplingPercentagePerLevel(fractions, self.seed + 1)
        if mask is not None:
            method.SetMetricFixedMask(mask)
        method.SetInterpolator(sitk.sitkLinear)
        method.SetShrinkFactorsPerLevel(shrinks)
        return method


@contextlib.contextmanager
def single_threaded_itk() -> Iterator[None]:
    """Run ITK filters on one thread inside the block (restoring the previous default after).

    ITK's Mattes metric adds up its joint histogram in the order threads finish and takes its
    thread count from the process-wide default (not from the registration method), so only one
    thread makes a seeded registration bit-for-bit reproducible. Parallelism comes from
    processing several subjects at once instead. Not safe with registrations in several Python
    threads of one process; medtrans uses processes.
    """
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)


def working_image(vol: Volume, modality: str) -> tuple[sitk.Image, sitk.Image]:
    """The scan on an axis-aligned grid of at most 2 mm, intensity-clipped, and its body mask (uint8)."""
    spacing = [max(WORKING_SPACING_MM, s) for s in vol.spacing_mm]
    small = resample_to_grid(vol, canonical_grid(vol, "LPS", spacing), "linear", modality)
    mask = body_mask(small, modality)
    if modality == "ct":
        low, high = CT_RANGE_HU
    else:
        body = small.array[mask] if mask.any() else small.array
        low, high = float(small.array.min()), float(np.percentile(body, MR_CEILING_PERCENTILE))
    image = small.with_array(np.clip(small.array, low, high).astype(np.float32)).to_sitk()
    return image, small.with_array(mask.astype(np.uint8)).to_sitk()


def initial_rigid(pair: WorkingPair) -> sitk.Euler3DTransform:
    """Euler transform aligning the body masks' centres of mass (the image centres if a mask is empty)."""
    if all(sitk.GetArrayViewFromImage(m).any() for m in (pair.fixed_mask, pair.moving_mask)):
        initial = sitk.CenteredTransformInitializer(
            sitk.Cast(pair.fixed_mask, sitk.sitkFloat32), sitk.Cast(pair.moving_mask, sitk.sitkFloat32),
            sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS)
    else:
        initial = sitk.CenteredTransformInitializer(
            pair.fixed, pair.moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY)
    return sitk.Euler3DTransform(initial)


def execute(method: sitk.ImageRegistrationMethod, pair: WorkingPair) -> None:
    """Run ``method``; an ITK failure (no overlap, too few samples) becomes a `MedtransError`."""
    try:
        method.Execute(pair.fixed, pair.moving)
    except RuntimeError as err:
        last_line = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
        raise MedtransError(f"registration failed (do the MR and CT overlap?): {last_line}") from None


def body_offsets(mask: sitk.Image, center: tuple[float, ...]) -> np.ndarray:
    """(N, 3) positions (mm) of body-mask voxels relative to ``center`` (every few voxels suffice)."""
    ijk = np.argwhere(sitk.GetArrayViewFromImage(mask) > 0)[::SCALE_VOXEL_STRIDE, ::-1].astype(np.float64)
    if len(ijk) == 0:
        ijk = np.array([[0.0, 0.0, 0.0], np.array(mask.GetSize(), dtype=np.float64) - 1])
    direction = np.array(mask.GetDirection()).reshape(3, 3) * np.array(mask.GetSpacing())
    return ijk @ direction.T + np.array(mask.GetOrigin()) - np.asarray(center)


def body_scales(transform: sitk.Transform, offsets: np.ndarray) -> list[float]:
    """Optimizer scales: mean squared displacement (mm^2) of the body per unit of each parameter.

    ITK's physical-shift estimator measures the shift at the image corners, which over-weights
    rotations when the body is smaller than the field of view; the gradient descent then
    zig-zags in translation while the angles barely move. Measured over the body, every
    parameter step moves the anatomy by about the same distance.
    """
    squared = offsets**2
    if isinstance(transform, sitk.Euler3DTransform):
        rotations = [float((squared.sum(axis=1) - squared[:, k]).mean()) for k in range(3)]
        return rotations + [1.0, 1.0, 1.0]
    if isinstance(transform, sitk.AffineTransform):
        return [float(squared[:, col].mean()) for _row in range(3) for col in range(3)] + [1.0, 1.0, 1.0]
    raise TypeError(f"no body scales for {transform.GetName()}")


def optimize_linear(pair: WorkingPair, initial: sitk.Transform, iterations: int, levels: int = 3) -> sitk.Transform:
    """Optimize a rigid or affine ``initial`` in place over the finest ``levels`` of the pyramid; returns it.

    Regular-step gradient descent with `body_scales`; the step (first 2 mm) shrinks each time the
    gradient turns back, and a level ends below 0.01 mm. Affine refinement runs on the finest
    level only: on the blurred coarse levels the optimum of the scale parameters drifts from 1.
    """
    shrinks, sigmas = pair.pyramid(levels)
    method = pair.method(shrinks, pair.sampling_mask)
    method.SetSmoothingSigmasPerLevel(sigmas)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=INITIAL_STEP_MM, minStep=MIN_STEP_MM, numberOfIterations=iterations,
        relaxationFactor=STEP_RELAXATION, gradientMagnitudeTolerance=1e-8)
    method.SetOptimizerScales(body_scales(initial, body_offsets(pair.fixed_mask, initial.GetCenter())))
    method.SetInitialTransform(initial, inPlace=True)
    execute(method, pair)
    return initial


def affine_from_rigid(rigid: sitk.Euler3DTransform) -> sitk.AffineTransform:
    """An affine transform equal to ``rigid`` (same centre), to refine."""
    affine = sitk.AffineTransform(3)
    affine.SetCenter(rigid.GetCenter())
    affine.SetMatrix(rigid.GetMatrix())
    affine.SetTranslation(rigid.GetTranslation())
    return affine


def optimize_bspline(pair: WorkingPair, bulk: sitk.Transform, iterations: int) -> sitk.Transform:
    """A cubic B-spline deformation (control points ~100 mm apart) on top of ``bulk``, as one composite transform.

    The usual SimpleITK recipe (L-BFGS-B on the two finest pyramid levels). Each evaluation
    updates a joint-histogram derivative per B-spline parameter (hundreds), so function
    evaluations are capped to keep a pair near a minute.
    """
    extent = [n * s for n, s in zip(pair.fixed.GetSize(), pair.fixed.GetSpacing())]
    mesh = [max(1, int(round(e / BSPLINE_CONTROL_SPACING_MM))) for e in extent]
    deformation = sitk.BSplineTransformInitializer(pair.fixed, mesh, order=3)
    shrinks, sigmas = pair.pyramid(2)
    method = pair.method(shrinks, pair.sampling_mask)
    method.SetSmoothingSigmasPerLevel(sigmas)
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=iterations,
                                maximumNumberOfFunctionEvaluations=BSPLINE_MAX_EVALUATIONS)
    method.SetMovingInitialTransform(bulk)
    method.SetInitialTransform(deformation, inPlace=True)
    execute(method, pair)
    # CompositeTransform applies its last transform first: fixed point -> deformation -> bulk.
    return sitk.CompositeTransform([bulk, deformation])


def evaluate_metric(pair: WorkingPair, transform: sitk.Transform) -> Optional[float]:
    """Mattes metric of the moving image seen through ``transform``; None if the images barely overlap.

    SimpleITK evaluates this on every voxel of the sampling mask (it ignores the random
    sampling), so values before and after are comparable, but not equal to the optimizer's.
    """
    method = pair.method([1], pair.sampling_mask)
    method.SetMovingInitialTransform(transform)
    method.SetInitialTransform(sitk.TranslationTransform(3))
    try:
        return float(method.MetricEvaluate(pair.fixed, pair.moving))
    except RuntimeError:
        return None


def working_pair(ct: Volume, mr: Volume, sampling: float, seed: int) -> WorkingPair:
    """The working images and masks of a CT (fixed) and MR (moving)."""
    fixed, fixed_mask = working_image(ct, "ct")
    moving, moving_mask = working_image(mr, "mr")
    return WorkingPair(fixed, moving, fixed_mask, moving_mask, sampling, seed)


def mask_dice(pair: WorkingPair, transform: sitk.Transform) -> float:
    """Dice overlap of the CT body mask and the MR body mask carried onto it through ``transform``."""
    moved = sitk.Resample(pair.moving_mask, pair.fixed_mask, transform, sitk.sitkNearestNeighbor, 0)
    return dice(sitk.GetArrayViewFromImage(pair.fixed_mask) > 0, sitk.GetArrayViewFromImage(moved) > 0)


def assess(pair: WorkingPair, transform: sitk.Transform, method: str) -> RegistrationResult:
    """Metric and body-mask Dice of the scans as they lie and through ``transform``."""
    identity = sitk.Transform(3, sitk.sitkIdentity)
    with single_threaded_itk():
        metric_before = evaluate_metric(pair, identity)
        metric_after = evaluate_metric(pair, transform)
    return RegistrationResult(transform, method, metric_before, metric_after,
                              mask_dice(pair, identity), mask_dice(pair, transform))


def assess_alignment(ct: Volume, mr: Volume) -> RegistrationResult:
    """How well ``mr`` matches ``ct`` as they lie (no registration: method 'none', identity transform)."""
    return assess(working_pair(ct, mr, 1.0, 0), sitk.Transform(3, sitk.sitkIdentity), "none")


def register_mr_to_ct(ct: Volume, mr: Volume, method: Method = "rigid", iterations: int = 200,
                      sampling: float = 0.1, seed: int = 0) -> RegistrationResult:
    """Register ``mr`` (moving) onto ``ct`` (fixed); both may be on any grid.

    Args:
        ct: the fixed CT in HU.
        mr: the moving MR.
        method: 'rigid', 'affine' (rigid, then affine) or 'bspline' (rigid, then deformable).
        iterations: the most optimizer iterations per pyramid level.
        sampling: fraction of the voxels in the dilated CT body mask sampled by the metric.
        seed: seed of the metric's random sampling; the same inputs and seed give the same result.

    Returns:
        The CT-world-to-MR-world transform, and the metric and body-mask Dice (on the working
        grid) before (identity) and after.

    Raises:
        MedtransError: when the optimizer cannot run (the scans do not overlap).
    """
    if method not in ("rigid", "affine", "bspline"):
        raise ValueError(f"unknown registration method {method!r}")
    pair = working_pair(ct, mr, sampling, seed)
    with single_threaded_itk():
        rigid = optimize_linear(pair, initial_rigid(pair), iterations)
        transform: sitk.Transform = rigid
        if method == "affine":
            transform = optimize_linear(pair, affine_from_rigid(rigid), iterations, levels=1)
        elif method == "bspline":
            transform = optimize_bspline(pair, rigid, iterations)
    return assess(pair, transform, method)


def target_registration_error(estimated: sitk.Transform, truth_fixed_to_moving: np.ndarray,
                              points_mm: np.ndarray) -> np.ndarray:
    """Distance (mm) between where ``estimated`` and the true (4, 4) LPS matrix send each of (N, 3) fixed points."""
    truth = points_mm @ truth_fixed_to_moving[:3, :3].T + truth_fixed_to_moving[:3, 3]
    mapped = np.array([estimated.TransformPoint(p) for p in points_mm.tolist()])
    return np.linalg.norm(mapped - truth, axis=1)

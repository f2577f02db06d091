"""Seeded head phantoms: paired T1-like MR + CT with a known rigid misalignment, and unpaired
healthy / pathology T1-like MR cohorts with lesion masks.

Anatomy is a set of implicit shapes in an "anatomy frame" (mm, LPS axes, origin at the head
centre) with random per-subject sizes, thicknesses and smooth shape perturbations (sums of
cosines over the direction from the head centre). Each scan is made by evaluating the tissue
label of every voxel centre of its own grid (mapped into the anatomy frame), looking up the
tissue's CT number or MR signal, blurring by about half a voxel (partial volume and the scanner's
point spread) and adding noise. Because MR and CT sample the same continuous anatomy through
exact world-to-anatomy maps, the recorded transform is the true one to machine precision.

Geometry of a paired subject (ITK convention; CT is the fixed image, MR the moving one):
``fixed_to_moving`` maps a CT world point (LPS mm) to the MR world point of the same anatomy, so
``sitk.Resample(mr, ct, transform)`` puts the MR onto the CT grid.

Example:
    >>> mr, ct, truth = make_paired_subject(3, size="tiny")
    >>> ct.array.dtype.name, mr.array.dtype.name, mr.same_grid(ct)
    ('int16', 'int16', False)
    >>> sorted(truth)[:3]
    ['center_mm', 'compute_zyx', 'convention']
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from pydicom.uid import generate_uid
from scipy import ndimage
from tqdm import tqdm

from medtrans.io import Grid, Volume, write_text_atomic, write_volume

# Slices evaluated at once: bounds the memory of the label evaluation for full-size volumes.
CHUNK_VOXELS = 1_500_000
# Direction matrices of the two scanners: CT stored in DICOM's LPS order, MR as RAS (x, y flipped),
# as many NIfTI converters write it; readers must honour the geometry, not the array order.
CT_DIRECTION = np.eye(3)
MR_DIRECTION = np.diag([-1.0, -1.0, 1.0])
MAX_ROTATION_DEG = 10.0
MAX_TRANSLATION_MM = 10.0
# Outside the head the CT is exactly -1000 HU (as after background and couch removal): noise in
# air would triple the size of the committed sample data and carries no information.
CT_AIR_HU = -1000
CT_NOISE_HU = 10.0
LESION_MASS, LESION_EDEMA = 1, 2


class Tissue(IntEnum):
    """Tissue labels of the phantom anatomy."""

    AIR = 0
    SKIN = 1
    FAT = 2
    MUSCLE = 3
    CORTICAL_BONE = 4
    CANCELLOUS_BONE = 5
    CSF = 6
    GREY_MATTER = 7
    WHITE_MATTER = 8
    DEEP_GREY = 9
    SINUS_AIR = 10
    EYE = 11
    LESION_MASS = 12
    LESION_CORE = 13
    LESION_RIM = 14
    EDEMA = 15


BRAIN_TISSUES = (Tissue.GREY_MATTER, Tissue.WHITE_MATTER, Tissue.DEEP_GREY)
LESION_TISSUES = (Tissue.LESION_MASS, Tissue.LESION_CORE, Tissue.LESION_RIM)
# Mean CT numbers (HU) and T1 signal (relative to white matter); each subject jitters them.
# Bone and air are both near zero on T1: only their surroundings tell them apart.
TISSUE_HU = {
    Tissue.AIR: -1000.0, Tissue.SKIN: 40.0, Tissue.FAT: -100.0, Tissue.MUSCLE: 45.0,
    Tissue.CORTICAL_BONE: 1500.0, Tissue.CANCELLOUS_BONE: 500.0, Tissue.CSF: 9.0,
    Tissue.GREY_MATTER: 40.0, Tissue.WHITE_MATTER: 28.0, Tissue.DEEP_GREY: 38.0,
    Tissue.SINUS_AIR: -1000.0, Tissue.EYE: 10.0, Tissue.LESION_MASS: 35.0,
    Tissue.LESION_CORE: 20.0, Tissue.LESION_RIM: 45.0, Tissue.EDEMA: 20.0,
}
TISSUE_T1 = {
    Tissue.AIR: 0.0, Tissue.SKIN: 0.55, Tissue.FAT: 1.3, Tissue.MUSCLE: 0.45,
    Tissue.CORTICAL_BONE: 0.04, Tissue.CANCELLOUS_BONE: 0.2, Tissue.CSF: 0.16,
    Tissue.GREY_MATTER: 0.64, Tissue.WHITE_MATTER: 1.0, Tissue.DEEP_GREY: 0.76,
    Tissue.SINUS_AIR: 0.0, Tissue.EYE: 0.12, Tissue.LESION_MASS: 0.42,
    Tissue.LESION_CORE: 0.22, Tissue.LESION_RIM: 1.25, Tissue.EDEMA: 0.72,
}


@dataclass(frozen=True)
class SizePreset:
    """Grids of one size option: CT and MR spacing (mm) and field of view (mm) along x, y, z."""

    ct_spacing_mm: tuple[float, float, float]
    ct_fov_mm: tuple[float, float, float]
    mr_spacing_mm: tuple[float, float, float]
    mr_fov_mm: tuple[float, float, float]
    brain_mr_fov_mm: tuple[float, float, float]


# The paired MR's field of view is larger in z so that the tilted, shifted head still covers the
# CT's; the unpaired brain MRs stop below the cerebellum. Small grids are as coarse as the 2 mm
# training grid allows, to keep the committed sample data small.
SIZE_PRESETS = {
    "tiny": SizePreset((4.0, 4.0, 5.0), (190.0, 210.0, 175.0), (5.0, 5.0, 6.0), (210.0, 230.0, 216.0),
                       (200.0, 225.0, 165.0)),
    "small": SizePreset((1.75, 1.75, 2.5), (190.0, 210.0, 175.0), (2.0, 2.0, 3.0), (210.0, 230.0, 216.0),
                        (200.0, 225.0, 165.0)),
    "full": SizePreset((1.0, 1.0, 1.0), (256.0, 256.0, 180.0), (0.9375, 0.9375, 1.2), (225.0, 240.0, 222.0),
                       (225.0, 240.0, 180.0)),
}


@dataclass(frozen=True)
class Waves:
    """A smooth random function of a unit direction: sum of cosines, standard deviation ~``amplitude``."""

    frequencies: np.ndarray  # (K, 3) radians per unit of the direction vector
    phases: np.ndarray  # (K,)
    amplitudes: np.ndarray  # (K,)

    @classmethod
    def random(cls, rng: np.random.Generator, n_terms: int, freq_range: tuple[float, float],
               amplitude: float) -> "Waves":
        """Random directions, frequencies in ``freq_range`` and phases."""
        axes = rng.normal(size=(n_terms, 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        frequencies = axes * rng.uniform(*freq_range, size=(n_terms, 1))
        phases = rng.uniform(0, 2 * np.pi, n_terms)
        return cls(frequencies, phases, np.full(n_terms, amplitude * np.sqrt(2.0 / n_terms)))

    def __call__(self, vx: np.ndarray, vy: np.ndarray, vz: np.ndarray) -> np.ndarray:
        """Value at unit directions (or at mm positions, for frequencies in rad/mm), given as
        components of any (equal) shape."""
        total = np.zeros(np.shape(vx), np.float32)
        for (fx, fy, fz), phase, amp in zip(self.frequencies, self.phases, self.amplitudes):
            total += np.float32(amp) * np.cos(np.float32(fx) * vx + np.float32(fy) * vy
                                              + np.float32(fz) * vz + np.float32(phase))
        return total


@dataclass(frozen=True)
class Anatomy:
    """One subject's head: sizes in mm, shape perturbations, tissue CT numbers and T1 signals."""

    semi_axes_mm: tuple[float, float, float]
    shape_waves: Waves
    skin_mm: float
    fat_mm: float
    fat_waves: Waves
    muscle_mm: float
    temporalis_mm: float
    skull_mm: float
    skull_waves: Waves
    frontal_bump_mm: float
    csf_mm: float
    grey_mm: float
    fold_waves: Waves
    sulcus_waves: Waves
    sulcus_bend_waves: Waves
    sulcus_csf: float  # |sulcus field| below which a sulcus holds CSF ...
    sulcus_grey: float  # ... and below which it is lined by grey matter
    sulcus_depth_mm: float
    base_anterior_mm: float  # skull-base heights (anatomy z, mm): anterior and posterior fossa,
    base_posterior_mm: float
    base_dip_mm: float  # and how much lower the middle fossa dips laterally
    base_mm: float  # skull-base bone thickness
    ventricle_scale: float
    scale: float  # head length / 92 mm: scales the positions of inner structures
    hu: dict[Tissue, float]
    t1: dict[Tissue, float]


@dataclass(frozen=True)
class Lesion:
    """A brain mass (solid or ring-like) with surrounding white-matter edema, in the anatomy frame."""

    centre_mm: tuple[float, float, float]
    radius_mm: float
    edema_mm: float
    rim_mm: float  # 0 for a solid mass
    shape_waves: Waves
    edema_waves: Waves


def jitter(rng: np.random.Generator, table: dict[Tissue, float], spread: float) -> dict[Tissue, float]:
    """``table`` with each non-air value scaled by a random factor in [1 - spread, 1 + spread]."""
    return {t: v if t in (Tissue.AIR, Tissue.SINUS_AIR) else v * rng.uniform(1 - spread, 1 + spread)
            for t, v in table.items()}


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one subject's anatomy; atrophy widens CSF spaces, sulci and ventricles together."""
    atrophy = rng.uniform(0, 1)
    semi_axes = (rng.uniform(68, 76), rng.uniform(86, 96), rng.uniform(92, 100))
    hu = jitter(rng, TISSUE_HU, 0.08)
    hu[Tissue.CORTICAL_BONE] = rng.uniform(1200, 1800)
    hu[Tissue.CANCELLOUS_BONE] = rng.uniform(350, 700)
    return Anatomy(
        semi_axes_mm=semi_axes,
        shape_waves=Waves.random(rng, 6, (1.5, 3.0), 0.025),
        skin_mm=rng.uniform(1.5, 2.5),
        fat_mm=rng.uniform(1.5, 4.5),
        fat_waves=Waves.random(rng, 6, (2.0, 4.0), 0.35),
        muscle_mm=rng.uniform(1.0, 2.0),
        temporalis_mm=rng.uniform(4.0, 8.0),
        skull_mm=rng.uniform(5.0, 9.0),
        skull_waves=Waves.random(rng, 6, (2.0, 4.0), 0.15),
        frontal_bump_mm=rng.uniform(7.0, 11.0),
        csf_mm=1.5 + 2.0 * atrophy + rng.uniform(0, 0.5),
        grey_mm=rng.uniform(2.6, 3.4),
        fold_waves=Waves.random(rng, 12, (8.0, 14.0), 1.2),
        sulcus_waves=Waves.random(rng, 16, (10.0, 16.0), 0.9),
        sulcus_bend_waves=Waves.random(rng, 12, (0.12, 0.2), 0.45),
        sulcus_csf=0.1 + 0.1 * atrophy,
        sulcus_grey=rng.uniform(0.45, 0.55),
        sulcus_depth_mm=rng.uniform(10.0, 16.0),
        base_anterior_mm=rng.uniform(-12.0, -4.0),
        base_posterior_mm=rng.uniform(-46.0, -38.0),
        base_dip_mm=rng.uniform(10.0, 18.0),
        base_mm=rng.uniform(5.0, 8.0),
        ventricle_scale=0.8 + 0.7 * atrophy + rng.uniform(0, 0.2),
        scale=semi_axes[1] / 92.0,
        hu=hu,
        t1=jitter(rng, TISSUE_T1, 0.05),
    )


def ellipsoid(x: np.ndarray, y: np.ndarray, z: np.ndarray, centre: tuple[float, float, float],
              radii: tuple[float, float, float]) -> np.ndarray:
    """Squared normalized radius of points relative to an axis-aligned ellipsoid (< 1 inside)."""
    return (((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
            + ((z - centre[2]) / radii[2]) ** 2)


def head_radius(anat: Anatomy, vx: np.ndarray, vy: np.ndarray, vz: np.ndarray) -> np.ndarray:
    """Distance (mm) from the head centre to the skin along unit directions."""
    ax, ay, az = anat.semi_axes_mm
    return (1 + anat.shape_waves(vx, vy, vz)) / np.sqrt((vx / ax) ** 2 + (vy / ay) ** 2 + (vz / az) ** 2)


def scalp_thickness(anat: Anatomy, vx: np.ndarray, vy: np.ndarray, vz: np.ndarray) -> np.ndarray:
    """Skin + fat + muscle thickness (mm); the temporalis muscle thickens it at the temples."""
    fat = anat.fat_mm * np.clip(1 + anat.fat_waves(vx, vy, vz), 0.3, 2.0)
    temporal = anat.temporalis_mm * np.clip((np.abs(vx) - 0.6) / 0.35, 0, 1) * np.exp(-((vz - 0.15) / 0.3) ** 2)
    return anat.skin_mm + fat + anat.muscle_mm + temporal


def frontal_sinus_direction(anat: Anatomy) -> np.ndarray:
    """Unit direction from the head centre to the frontal sinus (midline, just above the orbits)."""
    elevation = np.arcsin(np.clip((anat.base_anterior_mm + 14.0) / anat.semi_axes_mm[2], -0.5, 0.5))
    return np.array([0.0, -np.cos(elevation), np.sin(elevation)], np.float32)


def skull_thickness(anat: Anatomy, vx: np.ndarray, vy: np.ndarray, vz: np.ndarray) -> np.ndarray:
    """Skull thickness (mm) along unit directions, thickened around the frontal sinus."""
    sinus = frontal_sinus_direction(anat)
    bump = anat.frontal_bump_mm * np.exp(-(vx / 0.2) ** 2 - ((vz - sinus[2]) / 0.12) ** 2) * (vy < -0.5)
    return anat.skull_mm * np.clip(1 + anat.skull_waves(vx, vy, vz), 0.6, 1.5) + bump


def skull_base_height(anat: Anatomy, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (mm) of the floor of the cranial cavity: anterior fossa high, middle fossa dipping
    laterally, posterior fossa lowest."""
    s = anat.scale
    posterior = 1.0 / (1.0 + np.exp(-(y - 10.0 * s) / (8.0 * s)))
    middle_fossa = np.exp(-((y + 8.0 * s) / (16.0 * s)) ** 2) * np.clip(np.abs(x) / (30.0 * s), 0, 1)
    return (anat.base_anterior_mm + (anat.base_posterior_mm - anat.base_anterior_mm) * posterior
            - anat.base_dip_mm * middle_fossa)


def paint_layers(labels: np.ndarray, depth: np.ndarray, bounds: list[tuple[np.ndarray, Tissue]],
                 where: np.ndarray) -> None:
    """Label ``where`` by depth: the first tissue whose upper depth bound exceeds the voxel's depth."""
    remaining = where.copy()
    for upper, tissue in bounds:
        hit = remaining & (depth < upper)
        labels[hit] = tissue
        remaining &= ~hit


def paint_bone_plate(labels: np.ndarray, depth_in_plate: np.ndarray, thickness: np.ndarray,
                     where: np.ndarray) -> None:
    """Cortical tables on both faces of a bone plate with cancellous bone (diploe) between."""
    cortex = np.clip(0.3 * thickness, 1.2, 3.0)
    labels[where] = Tissue.CANCELLOUS_BONE
    labels[where & ((depth_in_plate < cortex) | (depth_in_plate > thickness - cortex * 0.8))] = Tissue.CORTICAL_BONE


def paint_shelled(labels: np.ndarray, inside_sq: np.ndarray, shell_sq: np.ndarray, tissue: Tissue,
                  allowed: np.ndarray) -> None:
    """Fill an ellipsoid with ``tissue`` inside a thin cortical-bone shell, within ``allowed``."""
    labels[allowed & (shell_sq < 1) & (inside_sq >= 1)] = Tissue.CORTICAL_BONE
    labels[allowed & (inside_sq < 1)] = tissue


def sulcus_field(anat: Anatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 v: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Random field (std ~1) whose near-zero sheets are the sulci: mostly a function of direction,
    so sulci run radially inwards from the surface, bent by a 3D part so they curve and end."""
    return anat.sulcus_waves(*v) + anat.sulcus_bend_waves(x, y, z)


def paint_brain(anat: Anatomy, labels: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                brain_depth: np.ndarray, v: tuple[np.ndarray, np.ndarray, np.ndarray],
                cranium: np.ndarray) -> None:
    """Cortex with sulci and the interhemispheric fissure, white matter, ventricles, deep grey,
    cerebellum and brainstem, inside the cranial cavity."""
    s, sv = anat.scale, anat.ventricle_scale
    brain = cranium & (brain_depth >= 0)
    labels[cranium] = Tissue.CSF
    grey_depth = anat.grey_mm + anat.fold_waves(*v)
    labels[brain] = Tissue.WHITE_MATTER
    labels[brain & (brain_depth < grey_depth)] = Tissue.GREY_MATTER
    sulci = np.abs(sulcus_field(anat, x, y, z, v))
    labels[brain & (sulci < anat.sulcus_grey) & (brain_depth < anat.sulcus_depth_mm + anat.grey_mm)] = Tissue.GREY_MATTER
    labels[brain & (sulci < anat.sulcus_csf) & (brain_depth < anat.sulcus_depth_mm)] = Tissue.CSF
    z_vent, y_vent = 12.0 * s, -2.0 * s
    fissure = 1.0 + 0.6 * sv
    upper = brain & (z > z_vent + 7.0 * sv + 4.0)
    labels[upper & (np.abs(x) < fissure + anat.grey_mm)] = Tissue.GREY_MATTER
    labels[upper & (np.abs(x) < fissure)] = Tissue.CSF
    cerebellum_centre = (0.0, 0.45 * anat.semi_axes_mm[1], anat.base_posterior_mm + 20.0 * s)
    cerebellum_radii = (50.0 * s, 30.0 * s, 22.0 * s)
    cerebellum_q = ellipsoid(x, y, z, cerebellum_centre, cerebellum_radii)
    tentorium = brain & (cerebellum_q >= 1) & (cerebellum_q < 1.12) & (z >= cerebellum_centre[2])
    labels[tentorium] = Tissue.CSF
    cerebellum = brain & ((cerebellum_q < 1) | ((z < cerebellum_centre[2]) & (y > 10.0 * s)))
    labels[cerebellum & (labels == Tissue.WHITE_MATTER)] = Tissue.GREY_MATTER
    for side in (-1.0, 1.0):
        core = ellipsoid(x, y, z, (side * 18.0 * s, cerebellum_centre[1] - 4.0 * s, cerebellum_centre[2]), (12 * s, 10 * s, 8 * s))
        labels[cerebellum & (core < 1)] = Tissue.WHITE_MATTER
    stem = (x / (11.0 * s)) ** 2 + ((y - 6.0 * s) / (12.0 * s)) ** 2 < 1
    labels[cranium & stem & (z < z_vent - 22.0 * s)] = Tissue.WHITE_MATTER
    white = labels == Tissue.WHITE_MATTER
    for side in (-1.0, 1.0):
        for centre, radii in (((10.0, 8.0, -14.0), (8.0, 14.0, 9.0)), ((22.0, -4.0, -8.0), (6.0, 13.0, 9.0)),
                              ((7.0 + 4.0 * sv, -14.0, 1.0), (4.0, 8.0, 6.0))):
            centre_mm = (side * centre[0] * s, y_vent + centre[1] * s, z_vent + centre[2] * s)
            labels[white & (ellipsoid(x, y, z, centre_mm, tuple(r * s for r in radii)) < 1)] = Tissue.DEEP_GREY
    ventricles = np.zeros_like(brain)
    droop = 0.012 * (y - y_vent) ** 2
    for side in (-1.0, 1.0):
        ventricles |= ellipsoid(x, y, z + droop, (side * (3.0 + 4.0 * sv), y_vent, z_vent), (4.5 * sv, 24.0 * s, 7.0 * sv)) < 1
    ventricles |= ((np.abs(x) < 1.2 + 0.8 * sv) & (y > y_vent - 6.0 * s) & (y < y_vent + 14.0 * s)
                   & (z > z_vent - 24.0 * s) & (z < z_vent - 8.0 * s))
    ventricles |= ellipsoid(x, y, z, (0.0, 16.0 * s, cerebellum_centre[2]), (5.0, 4.0, 6.0)) < 1
    labels[brain & ventricles] = Tissue.CSF


def paint_face_and_neck(anat: Anatomy, labels: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                        deep: np.ndarray, below_base: np.ndarray) -> None:
    """Below the skull base: eyes in fatty orbits, nasal cavity and maxillary sinuses, pharynx,
    cervical spine with the cord, and the mandible."""
    s = anat.scale
    ax, ay, az = anat.semi_axes_mm
    soft = deep & below_base
    z_eye = anat.base_anterior_mm - anat.base_mm - 14.0
    for side in (-1.0, 1.0):
        x_eye = side * 31.0 * s
        front = -ay * np.sqrt(max(1 - (z_eye / az) ** 2 - (x_eye / ax) ** 2, 0.1))
        centre = (x_eye, front + 17.0, z_eye)
        labels[soft & (ellipsoid(x, y, z, centre, (19.5, 19.5, 19.5)) < 1) & (y > centre[1] - 4)] = Tissue.CORTICAL_BONE
        labels[soft & (ellipsoid(x, y, z, (centre[0], centre[1] + 5, centre[2]), (16.0, 16.0, 16.0)) < 1)] = Tissue.FAT
        labels[soft & (ellipsoid(x, y, z, centre, (11.5, 11.5, 11.5)) < 1)] = Tissue.EYE
    z_nose = anat.base_anterior_mm - 38.0
    nose = (0.0, -0.62 * ay, z_nose)
    paint_shelled(labels, ellipsoid(x, y, z, nose, (9.0, 25.0 * s, 17.0)),
                  ellipsoid(x, y, z, nose, (11.0, 27.0 * s, 19.0)), Tissue.SINUS_AIR, soft)
    for side in (-1.0, 1.0):
        antrum = (side * 26.0 * s, -0.55 * ay, z_nose - 7.0)
        paint_shelled(labels, ellipsoid(x, y, z, antrum, (12.0, 16.0, 15.0)),
                      ellipsoid(x, y, z, antrum, (14.0, 18.0, 17.0)), Tissue.SINUS_AIR, soft)
    y_canal = 8.0 * s
    canal_r = np.sqrt(x**2 + (y - y_canal) ** 2)
    neck = soft & (z < anat.base_posterior_mm - anat.base_mm)
    labels[neck & (canal_r < 12.0) & (y > y_canal - 3.0)] = Tissue.CORTICAL_BONE
    labels[neck & (canal_r < 8.0)] = Tissue.CSF
    labels[neck & (canal_r < 5.0)] = Tissue.WHITE_MATTER
    body_r = np.sqrt(x**2 + (y - y_canal + 20.0) ** 2)
    disc = np.abs(((z - anat.base_posterior_mm) % 18.0) - 9.0) < 2.0
    labels[neck & (body_r < 10.0)] = Tissue.CORTICAL_BONE
    labels[neck & (body_r < 8.5)] = Tissue.CANCELLOUS_BONE
    labels[neck & (body_r < 10.0) & disc] = Tissue.MUSCLE
    airway = ((x / 12.0) ** 2 + ((y - y_canal + 40.0) / 7.0) ** 2 < 1) & (z < z_nose)
    labels[soft & airway] = Tissue.SINUS_AIR
    z_jaw = anat.base_anterior_mm - 60.0
    arch = np.sqrt((x / (45.0 * s)) ** 2 + ((y + 15.0) / (0.62 * ay)) ** 2)
    jaw = soft & (np.abs(arch - 1) * 45.0 * s < 5.0) & (np.abs(z - z_jaw) < 9.0) & (y < -15.0)
    labels[jaw] = Tissue.CORTICAL_BONE
    labels[jaw & (np.abs(arch - 1) * 45.0 * s < 3.0) & (np.abs(z - z_jaw) < 7.0)] = Tissue.CANCELLOUS_BONE


def paint_frontal_sinus(anat: Anatomy, labels: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                        allowed: np.ndarray) -> None:
    """An air cell with a bony wall inside the thickened frontal bone, above the orbits."""
    v = frontal_sinus_direction(anat)
    vx, vy, vz = (np.array([c], np.float32) for c in v)
    outer = head_radius(anat, vx, vy, vz)[0] - scalp_thickness(anat, vx, vy, vz)[0]
    thickness = float(skull_thickness(anat, vx, vy, vz)[0])
    centre = tuple(float(c) for c in v * (outer - thickness / 2))
    half_depth = float(np.clip(thickness / 2 - 2.5, 1.5, 6.0))
    radii = (14.0 * anat.scale, half_depth, 9.0)
    paint_shelled(labels, ellipsoid(x, y, z, centre, radii),
                  ellipsoid(x, y, z, centre, (radii[0] + 1.5, radii[1] + 1.5, radii[2] + 1.5)),
                  Tissue.SINUS_AIR, allowed)


def tissue_labels(anat: Anatomy, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Tissue label (uint8, `Tissue`) at anatomy-frame points (mm) given as equal-shape arrays."""
    rho = np.sqrt(x**2 + y**2 + z**2) + np.float32(1e-3)
    v = (x / rho, y / rho, z / rho)
    depth = head_radius(anat, *v) - rho
    scalp = scalp_thickness(anat, *v)
    skull = skull_thickness(anat, *v)
    base = skull_base_height(anat, x, y)
    labels = np.zeros(x.shape, np.uint8)
    head = depth >= 0
    fat_end = anat.skin_mm + anat.fat_mm * np.clip(1 + anat.fat_waves(*v), 0.3, 2.0)
    paint_layers(labels, depth, [(anat.skin_mm, Tissue.SKIN), (fat_end, Tissue.FAT),
                                 (np.float32(np.inf), Tissue.MUSCLE)], head)
    inner = scalp + skull
    below_base = z <= base - anat.base_mm
    vault = head & (depth >= scalp) & (depth < inner) & (z > base - anat.base_mm - 8.0)
    paint_bone_plate(labels, depth - scalp, skull, vault)
    foramen = x**2 + (y - 8.0 * anat.scale) ** 2 < (13.0 * anat.scale) ** 2
    plate = head & (depth >= inner) & (z <= base) & ~below_base & ~foramen
    paint_bone_plate(labels, base - z, np.full_like(depth, anat.base_mm), plate)
    cranium = head & (depth >= inner) & (z > base)
    brain_depth = np.minimum(depth - inner - anat.csf_mm, z - base - anat.csf_mm)
    paint_brain(anat, labels, x, y, z, brain_depth, v, cranium)
    paint_face_and_neck(anat, labels, x, y, z, head & (depth >= fat_end + 1.0), below_base)
    paint_frontal_sinus(anat, labels, x, y, z, head & (depth >= scalp))
    return labels


def sample_lesion(rng: np.random.Generator, anat: Anatomy) -> Lesion:
    """A mass centred in cerebral white or deep grey matter, well inside the brain."""
    radius = rng.uniform(9.0, 20.0)
    for _ in range(200):
        v = rng.normal(size=3)
        v[2] = abs(v[2]) + 0.3
        v /= np.linalg.norm(v)
        vx, vy, vz = (np.array([c], np.float32) for c in v)
        brain_surface = float(head_radius(anat, vx, vy, vz)[0] - scalp_thickness(anat, vx, vy, vz)[0]
                              - skull_thickness(anat, vx, vy, vz)[0] - anat.csf_mm)
        centre = v * (brain_surface - 1.3 * radius - rng.uniform(6.0, 20.0))
        cx, cy, cz = (np.array([c], np.float32) for c in centre)
        floor = float(skull_base_height(anat, cx, cy)[0])
        label = tissue_labels(anat, cx, cy, cz)[0]
        if label in (Tissue.WHITE_MATTER, Tissue.DEEP_GREY) and centre[2] - floor > radius + 15.0:
            break
    else:
        raise RuntimeError("no room for a lesion in this anatomy")
    return Lesion(
        centre_mm=tuple(float(c) for c in centre),
        radius_mm=radius,
        edema_mm=rng.uniform(5.0, 18.0),
        rim_mm=rng.uniform(2.0, 4.0) if rng.uniform() < 0.5 else 0.0,
        shape_waves=Waves.random(rng, 6, (2.0, 4.0), 0.12),
        edema_waves=Waves.random(rng, 8, (3.0, 6.0), 0.3),
    )


def mass_effect(lesion: Lesion, x: np.ndarray, y: np.ndarray, z: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each point's tissue came from before the mass pushed it outwards (radial, local).

    Source radius ``r - a r (1 - r/R)^2`` for ``r < R``: monotonic for ``a < 1``, identity beyond R.
    """
    cx, cy, cz = lesion.centre_mm
    dx, dy, dz = x - cx, y - cy, z - cz
    reach = 2.2 * lesion.radius_mm
    r = np.sqrt(dx**2 + dy**2 + dz**2)
    shrink = 1 - 0.6 * np.clip(1 - r / reach, 0, 1) ** 2
    return cx + dx * shrink, cy + dy * shrink, cz + dz * shrink


def paint_lesion(lesion: Lesion, labels: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """Replace brain tissue by the mass (core + enhancing rim when ring-like) and white matter
    around it by edema."""
    cx, cy, cz = lesion.centre_mm
    dx, dy, dz = x - cx, y - cy, z - cz
    r = np.sqrt(dx**2 + dy**2 + dz**2) + np.float32(1e-3)
    v = (dx / r, dy / r, dz / r)
    mass_r = lesion.radius_mm * (1 + lesion.shape_waves(*v))
    edema_r = mass_r + lesion.edema_mm * np.clip(1 + lesion.edema_waves(*v), 0.2, 2.0)
    labels[(r < edema_r) & (labels == Tissue.WHITE_MATTER)] = Tissue.EDEMA
    mass = (r < mass_r) & np.isin(labels, (*BRAIN_TISSUES, Tissue.CSF, Tissue.EDEMA))
    if lesion.rim_mm > 0:
        labels[mass] = Tissue.LESION_RIM
        labels[mass & (r < mass_r - lesion.rim_mm)] = Tissue.LESION_CORE
    else:
        labels[mass] = Tissue.LESION_MASS


def label_grid(anat: Anatomy, grid: Grid, grid_to_anatomy: np.ndarray, lesion: Lesion | None = None) -> np.ndarray:
    """Tissue labels (uint8, shape (X, Y, Z)) of the voxel centres of ``grid``.

    Args:
        grid_to_anatomy: (4, 4) map from the grid's LPS world (mm) to the anatomy frame (mm).
    """
    index_to_anatomy = (grid_to_anatomy @ grid.affine).astype(np.float32)
    nx, ny, nz = grid.shape
    i = np.arange(nx, dtype=np.float32)[:, None, None]
    j = np.arange(ny, dtype=np.float32)[None, :, None]
    labels = np.empty(grid.shape, np.uint8)
    step = max(1, CHUNK_VOXELS // (nx * ny))
    for k0 in range(0, nz, step):
        k = np.arange(k0, min(k0 + step, nz), dtype=np.float32)[None, None, :]
        x, y, z = (m[0] * i + m[1] * j + m[2] * k + m[3] for m in index_to_anatomy[:3])
        source = (x, y, z) if lesion is None else mass_effect(lesion, x, y, z)
        block = tissue_labels(anat, *source)
        if lesion is not None:
            paint_lesion(lesion, block, x, y, z)
        labels[:, :, k0:k0 + k.shape[2]] = block
    return labels


def lookup(labels: np.ndarray, table: dict[Tissue, float]) -> np.ndarray:
    """Per-voxel value of each voxel's tissue (float32)."""
    values = np.zeros(len(Tissue), np.float32)
    for tissue, value in table.items():
        values[tissue] = value
    return values[labels]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: float) -> np.ndarray:
    """Gaussian noise blurred by ``sigma_vox`` voxels, rescaled to unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), sigma_vox)
    return noise / max(float(noise.std()), 1e-6)


def partial_volume_sigma(spacing_mm: tuple[float, ...]) -> tuple[float, ...]:
    """Blur (voxels) standing for partial volume and the point spread: ~0.45 voxel, at least 0.6 mm."""
    return tuple(max(0.45, 0.6 / s) for s in spacing_mm)


def render_ct(anat: Anatomy, labels: np.ndarray, grid: Grid, rng: np.random.Generator) -> Volume:
    """CT in HU (int16): tissue HU, textured bone, blur, correlated noise of ~10 HU inside the head."""
    hu = lookup(labels, anat.hu)
    bone = (labels == Tissue.CORTICAL_BONE) | (labels == Tissue.CANCELLOUS_BONE)
    hu[bone] *= 1 + 0.12 * smooth_noise(rng, labels.shape, 1.5)[bone]
    hu = ndimage.gaussian_filter(hu, partial_volume_sigma(grid.spacing_mm))
    head = ndimage.gaussian_filter((labels != Tissue.AIR).astype(np.float32), 1.0) > 0.02
    hu[head] += CT_NOISE_HU * smooth_noise(rng, labels.shape, 0.6)[head]
    hu[~head] = CT_AIR_HU
    return grid.volume(np.clip(np.round(hu), -1024, 3071).astype(np.int16), modality="CT")


def bias_field(rng: np.random.Generator, grid: Grid) -> np.ndarray:
    """Smooth multiplicative receive-coil bias (about +-20 %), a random quadratic in the grid's
    normalized coordinates, shape (X, Y, Z)."""
    # Like MONAI's RandBiasField, but drawn from the subject's generator so one seed fixes every byte.
    u = [np.linspace(-1, 1, n, dtype=np.float32) for n in grid.shape]
    ux, uy, uz = u[0][:, None, None], u[1][None, :, None], u[2][None, None, :]
    terms = [ux, uy, uz, ux * uy, ux * uz, uy * uz, ux**2, uy**2, uz**2]
    coefficients = rng.normal(0, 0.08, len(terms))
    log_bias = sum(np.float32(c) * t for c, t in zip(coefficients, terms))
    return np.exp(np.broadcast_to(log_bias, grid.shape)).astype(np.float32)


def render_mr(anat: Anatomy, labels: np.ndarray, grid: Grid, rng: np.random.Generator) -> Volume:
    """T1-like MR (int16 arbitrary units): tissue signal, blur, bias field, Rician noise."""
    white_matter = rng.uniform(80, 120)
    signal = lookup(labels, anat.t1) * np.float32(white_matter)
    signal = ndimage.gaussian_filter(signal, partial_volume_sigma(grid.spacing_mm)) * bias_field(rng, grid)
    sigma = np.float32(white_matter * rng.uniform(0.012, 0.018))
    # Rician magnitude noise as MONAI's RandRicianNoise, drawn from the subject's generator.
    real = signal + sigma * rng.standard_normal(grid.shape, np.float32)
    imaginary = sigma * rng.standard_normal(grid.shape, np.float32)
    magnitude = np.sqrt(real**2 + imaginary**2)
    return grid.volume(np.round(magnitude).astype(np.int16), modality="MR")


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """(3, 3) rotation by an angle up to ``max_deg`` (at least a third of it) about a random axis."""
    axis = rng.normal(size=3)
    angle = np.deg2rad(rng.uniform(max_deg / 3, max_deg))
    versor = sitk.VersorTransform([float(a) for a in axis / np.linalg.norm(axis)], float(angle))
    return np.array(versor.GetMatrix()).reshape(3, 3)


def random_shift(rng: np.random.Generator, max_mm: float) -> np.ndarray:
    """A random translation (mm) of length between a third of ``max_mm`` and ``max_mm``."""
    direction = rng.normal(size=3)
    return direction / np.linalg.norm(direction) * rng.uniform(max_mm / 3, max_mm)


def euler_transform(rng: np.random.Generator, centre_mm: np.ndarray, max_deg: float,
                    max_mm: float) -> sitk.Euler3DTransform:
    """A random rigid `sitk.Euler3DTransform` about ``centre_mm``."""
    transform = sitk.Euler3DTransform()
    transform.SetCenter([float(c) for c in centre_mm])
    transform.SetMatrix([float(m) for m in random_rotation(rng, max_deg).ravel()])
    transform.SetTranslation([float(t) for t in random_shift(rng, max_mm)])
    return transform


def transform_matrix(transform: sitk.Euler3DTransform) -> np.ndarray:
    """The (4, 4) homogeneous matrix of a SimpleITK rigid transform (point in -> point out)."""
    matrix = np.eye(4)
    rotation = np.array(transform.GetMatrix()).reshape(3, 3)
    centre = np.array(transform.GetCenter())
    matrix[:3, :3] = rotation
    matrix[:3, 3] = np.array(transform.GetTranslation()) + centre - rotation @ centre
    return matrix


def truth_record(transform: sitk.Euler3DTransform) -> dict[str, Any]:
    """The JSON truth of a paired subject: the CT (fixed) -> MR (moving) world map and its Euler form."""
    matrix = transform_matrix(transform)
    rotation_deg = np.rad2deg(np.arccos(np.clip((np.trace(matrix[:3, :3]) - 1) / 2, -1, 1)))
    return {
        "convention": "ITK registration of MR (moving) onto CT (fixed): fixed_to_moving maps a CT "
                      "world point (LPS, mm) to the MR world point of the same anatomy; "
                      "sitk.Euler3DTransform(center_mm, *euler_angles_rad, translation_mm) rebuilds it",
        "fixed": "ct",
        "moving": "mr",
        "fixed_to_moving": matrix.tolist(),
        "moving_to_fixed": np.linalg.inv(matrix).tolist(),
        "euler_angles_rad": [transform.GetAngleX(), transform.GetAngleY(), transform.GetAngleZ()],
        "compute_zyx": bool(transform.GetComputeZYX()),
        "translation_mm": list(transform.GetTranslation()),
        "center_mm": list(transform.GetCenter()),
        "rotation_deg": float(rotation_deg),
        "translation_norm_mm": float(np.linalg.norm(transform.GetTranslation())),
    }


def head_pose(rng: np.random.Generator, max_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """The head's placement in the scanner: (4, 4) scanner-world -> anatomy map and the head centre."""
    centre = np.array([rng.uniform(-5, 5), rng.uniform(-5, 5), 0.0])
    world_to_anatomy = np.eye(4)
    rotation = random_rotation(rng, max_deg)
    world_to_anatomy[:3, :3] = rotation.T
    world_to_anatomy[:3, 3] = -rotation.T @ centre
    return world_to_anatomy, centre


def preset(size: str) -> SizePreset:
    """The grids of ``size``; a clear error for an unknown name."""
    if size not in SIZE_PRESETS:
        raise ValueError(f"size must be one of {', '.join(SIZE_PRESETS)}, got {size!r}")
    return SIZE_PRESETS[size]


def scanner_grid(spacing_mm: tuple[float, ...], fov_mm: tuple[float, ...], anat: Anatomy,
                 head_centre: np.ndarray, direction: np.ndarray, rng: np.random.Generator) -> Grid:
    """A field of view centred on the head in x, y, its top ~12 mm above the vertex, jittered."""
    top = head_centre[2] + anat.semi_axes_mm[2] + 12.0
    centre = np.array([head_centre[0], head_centre[1], top - fov_mm[2] / 2]) + rng.uniform(-4, 4, 3)
    return Grid.centred(spacing_mm, fov_mm, centre, direction)


def make_paired_subject(seed: int, size: str = "small") -> tuple[Volume, Volume, dict[str, Any]]:
    """A T1-like MR and a CT of the same head, on different grids, the MR rigidly moved.

    Returns:
        (mr, ct, truth): MR int16 arbitrary units; CT int16 HU; ``truth`` holds ``fixed_to_moving``
        ((4, 4), CT world -> MR world, LPS mm) and the Euler angles (rad), translation (mm) and
        centre (mm) of the equivalent `sitk.Euler3DTransform` (see `truth_record`).
    """
    sizes = preset(size)
    rng = np.random.default_rng(seed)
    anat = sample_anatomy(rng)
    ct_to_anatomy, head_centre = head_pose(rng, 3.0)
    ct_grid = scanner_grid(sizes.ct_spacing_mm, sizes.ct_fov_mm, anat, head_centre, CT_DIRECTION, rng)
    motion = euler_transform(rng, head_centre, MAX_ROTATION_DEG, MAX_TRANSLATION_MM)
    fixed_to_moving = transform_matrix(motion)
    mr_centre = (fixed_to_moving @ np.append(ct_grid.centre_mm, 1.0))[:3] + rng.uniform(-4, 4, 3)
    mr_grid = Grid.centred(sizes.mr_spacing_mm, sizes.mr_fov_mm, mr_centre, MR_DIRECTION)
    ct = render_ct(anat, label_grid(anat, ct_grid, ct_to_anatomy), ct_grid, rng)
    mr_to_anatomy = ct_to_anatomy @ np.linalg.inv(fixed_to_moving)
    mr = render_mr(anat, label_grid(anat, mr_grid, mr_to_anatomy), mr_grid, rng)
    truth = {"seed": int(seed), "size": size, **truth_record(motion)}
    return mr, ct, truth


@dataclass(frozen=True)
class UnpairedDraw:
    """Everything random about an unpaired subject except the image noise."""

    anatomy: Anatomy
    lesion: Lesion | None
    grid: Grid
    world_to_anatomy: np.ndarray  # (4, 4) scanner LPS mm -> anatomy frame mm


def draw_unpaired(rng: np.random.Generator, pathology: bool, size: str) -> UnpairedDraw:
    """Anatomy, head pose, brain-MR grid and (for ``pathology``) lesion of one unpaired subject.

    The lesion is drawn last, so a healthy and a pathology subject of the same seed share the
    head, pose and grid: the healthy one is the pathology one's twin without the lesion.
    """
    sizes = preset(size)
    anat = sample_anatomy(rng)
    world_to_anatomy, head_centre = head_pose(rng, MAX_ROTATION_DEG)
    grid = scanner_grid(sizes.mr_spacing_mm, sizes.brain_mr_fov_mm, anat, head_centre, MR_DIRECTION, rng)
    lesion = sample_lesion(rng, anat) if pathology else None
    return UnpairedDraw(anat, lesion, grid, world_to_anatomy)


def lesion_mask(labels: np.ndarray) -> np.ndarray:
    """Lesion mask (uint8) from tissue labels: `LESION_MASS` for the mass, `LESION_EDEMA` for edema."""
    mask = np.zeros(labels.shape, np.uint8)
    mask[np.isin(labels, LESION_TISSUES)] = LESION_MASS
    mask[labels == Tissue.EDEMA] = LESION_EDEMA
    return mask


def make_unpaired_subject(seed: int, pathology: bool, size: str = "small") -> tuple[Volume, Volume | None]:
    """A T1-like brain MR; with ``pathology`` it carries a mass with edema.

    Returns:
        (image, lesion): image int16 arbitrary units; lesion uint8 on the same grid (1 = mass,
        2 = edema) for pathology subjects, else None.
    """
    rng = np.random.default_rng(seed)
    draw = draw_unpaired(rng, pathology, size)
    labels = label_grid(draw.anatomy, draw.grid, draw.world_to_anatomy, draw.lesion)
    image = render_mr(draw.anatomy, labels, draw.grid, rng)
    if draw.lesion is None:
        return image, None
    return image, draw.grid.volume(lesion_mask(labels), modality="SEG")


COHORT_PREFIXES = {"paired": "p", "healthy": "h", "pathology": "d"}


def subject_seed(seed: int, cohort: str, index: int) -> int:
    """Seed of subject ``index`` of ``cohort``: an independent stream per cohort and base seed."""
    code = list(COHORT_PREFIXES).index(cohort)
    return int(np.random.SeedSequence([seed, code, index]).generate_state(1)[0])


def cohort_plan(n_paired: int, n_unpaired: int, seed: int) -> list[dict[str, Any]]:
    """Subjects to write, in order: ``{"subject": "p01", "cohort": "paired", "seed": ...}``."""
    counts = {"paired": n_paired, "healthy": n_unpaired, "pathology": n_unpaired}
    return [{"subject": f"{prefix}{index + 1:02d}", "cohort": cohort, "seed": subject_seed(seed, cohort, index)}
            for cohort, prefix in COHORT_PREFIXES.items() for index in range(counts[cohort])]


def subject_folder(outdir: Path, entry: dict[str, Any]) -> Path:
    """Where a subject of ``cohort_plan`` is written."""
    if entry["cohort"] == "paired":
        return outdir / "paired" / entry["subject"]
    return outdir / "unpaired" / entry["cohort"] / entry["subject"]


def json_lines(record: dict[str, Any]) -> str:
    """``record`` as JSON, one top-level key per line (a list of records one item per line)."""
    def text(value: Any) -> str:
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return "[\n" + ",\n".join(f"    {json.dumps(item)}" for item in value) + "\n  ]"
        return json.dumps(value)
    return "{\n" + ",\n".join(f"  {json.dumps(k)}: {text(v)}" for k, v in record.items()) + "\n}\n"


def write_paired_subject(folder: Path, seed: int, size: str) -> tuple[Volume, Volume]:
    """Write ``mr.nii.gz``, ``ct.nii.gz`` and ``truth.json`` of one paired subject; returns (mr, ct)."""
    mr, ct, truth = make_paired_subject(seed, size)
    write_volume(mr, folder / "mr.nii.gz")
    write_volume(ct, folder / "ct.nii.gz")
    write_text_atomic(folder / "truth.json", json_lines(truth))
    return mr, ct


def write_unpaired_subject(folder: Path, seed: int, pathology: bool, size: str) -> None:
    """Write ``image.nii.gz`` (and ``lesion.nii.gz`` for pathology) of one unpaired subject."""
    image, lesion = make_unpaired_subject(seed, pathology, size)
    write_volume(image, folder / "image.nii.gz")
    if lesion is not None:
        write_volume(lesion, folder / "lesion.nii.gz")


def write_dicom_copy(mr: Volume, ct: Volume, folder: Path, subject: str, seed: int) -> bool:
    """Write ``mr`` and ``ct`` as DICOM series of one study in ``folder/mr`` and ``folder/ct``
    (replacing earlier copies); False when medtrans cannot write DICOM."""
    try:
        from medtrans.io.dicom import write_dicom_series
    except ImportError:
        return False
    identity = {"PatientName": f"Phantom^{subject}", "PatientID": subject, "StudyID": subject,
                "StudyDescription": "medtrans head phantom",
                "StudyInstanceUID": generate_uid(entropy_srcs=["medtrans.phantoms", subject, str(seed)])}
    write_dicom_series(mr, folder / "mr", modality="MR", series_description="T1 head phantom",
                       identity=identity, overwrite=True)
    write_dicom_series(ct, folder / "ct", modality="CT", series_description="CT head phantom",
                       identity=identity, overwrite=True)
    return True


def write_cohorts(outdir: str | Path, n_paired: int = 8, n_unpaired: int = 8, size: str = "small",
                  seed: int = 0, n_dicom: int = 1) -> dict[str, Any]:
    """Write the paired, unpaired-healthy and unpaired-pathology cohorts, plus DICOM copies.

    Layout under ``outdir``: ``paired/pNN/{mr.nii.gz, ct.nii.gz, truth.json}``,
    ``unpaired/healthy/hNN/image.nii.gz``, ``unpaired/pathology/dNN/{image,lesion}.nii.gz``,
    ``dicom/pNN/{mr,ct}/`` for the first ``n_dicom`` paired subjects, and ``cohorts.json``
    (size, seed and every subject's seed). Same arguments, same bytes.

    Returns:
        The ``cohorts.json`` record plus ``"seconds"``, the generation time.
    """
    preset(size)
    outdir = Path(outdir)
    plan = cohort_plan(n_paired, n_unpaired, seed)
    dicom: list[str] = []
    started = time.perf_counter()
    for entry in tqdm(plan, desc="sample data", unit="subject"):
        folder = subject_folder(outdir, entry)
        if entry["cohort"] != "paired":
            write_unpaired_subject(folder, entry["seed"], entry["cohort"] == "pathology", size)
            continue
        mr, ct = write_paired_subject(folder, entry["seed"], size)
        if len(dicom) < n_dicom and write_dicom_copy(mr, ct, outdir / "dicom" / entry["subject"],
                                                     entry["subject"], entry["seed"]):
            dicom.append(entry["subject"])
    record = {"generator": "medtrans.phantoms", "size": size, "seed": seed, "subjects": plan, "dicom": dicom}
    write_text_atomic(outdir / "cohorts.json", json_lines(record))
    return {**record, "seconds": time.perf_counter() - started}

"""`medtrans info PATH`: shape, spacing, origin, orientation, dtype and intensity range of a scan.

Example:
    $ medtrans info scans/ct.nii.gz
    $ medtrans info scans/dicom_folder --series 1.2.840.113619.2.55.3 --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from medtrans.io import read_volume
from medtrans.io.dicom import DicomSeriesInfo, MultipleSeriesError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `info` subcommand."""
    parser = subparsers.add_parser(
        "info",
        help="describe a scan: shape, spacing, origin, orientation, dtype, intensity range",
        description="Describe a NIfTI / MetaImage / NRRD file or a DICOM series folder. For a folder "
        "holding several series, list them.",
    )
    parser.add_argument("path", type=Path, help="a .nii/.nii.gz/.mha/.mhd/.nrrd file or a DICOM folder")
    parser.add_argument("--series", metavar="UID", help="SeriesInstanceUID to describe in a multi-series DICOM folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the description of ``args.path`` (or the list of its DICOM series); 0 on success."""
    try:
        vol = read_volume(args.path, series_uid=args.series, allow_nonfinite=True)
    except MultipleSeriesError as err:
        listing = series_listing(err.folder, err.series)
        print(json.dumps(listing) if args.json else format_listing(err.folder, err.series))
        return 0
    facts = {"path": str(args.path), **vol.describe()}
    if vol.array.dtype.kind == "f":
        facts["nonfinite_voxels"] = int(np.count_nonzero(~np.isfinite(vol.array)))
    print(json.dumps(facts) if args.json else format_facts(facts))
    return 0


def series_listing(folder: Path, series: list[DicomSeriesInfo]) -> dict[str, Any]:
    """The series of a folder as plain data (for --json)."""
    return {
        "path": str(folder),
        "series": [
            {"series_uid": s.series_uid, "series_description": s.description, "modality": s.modality,
             "n_files": s.n_files}
            for s in series
        ],
    }


def format_listing(folder: Path, series: list[DicomSeriesInfo]) -> str:
    """Human-readable list of the series in a folder, with how to choose one."""
    lines = [f"{folder}: {len(series)} DICOM series", f"  {'SeriesInstanceUID':<64}  modality  files  description"]
    lines += [f"  {s.series_uid:<64}  {s.modality or '?':<8}  {s.n_files:>5}  {s.description}" for s in series]
    lines.append(f"Describe one with: medtrans info {folder} --series UID")
    return "\n".join(lines)


def format_facts(facts: dict[str, Any]) -> str:
    """Human-readable description of one volume."""
    shape, spacing, origin = facts["shape"], facts["spacing_mm"], facts["origin_mm"]
    lines = [
        str(facts["path"]),
        f"  shape        {' x '.join(str(n) for n in shape)} voxels (i, j, k)",
        f"  spacing      {' x '.join(f'{s:g}' for s in spacing)} mm",
        f"  origin       ({', '.join(f'{o:g}' for o in origin)}) mm, LPS",
        f"  orientation  {facts['orientation']}",
        "  direction    columns are the i, j, k axes in LPS",
        *(f"               [{', '.join(f'{x:9.6f}' for x in row)}]" for row in facts["direction"]),
        f"  dtype        {facts['dtype']}",
        f"  intensity    {facts['min']:g} .. {facts['max']:g}" if facts["min"] is not None
        else "  intensity    no finite voxels",
    ]
    if facts.get("nonfinite_voxels"):
        lines.append(f"  non-finite   {facts['nonfinite_voxels']} NaN/Inf voxel(s)")
    for key, label in (("modality", "modality"), ("series_uid", "series UID"),
                       ("series_description", "description"), ("n_files", "files")):
        if key in facts:
            lines.append(f"  {label:<12} {facts[key]}")
    return "\n".join(lines)

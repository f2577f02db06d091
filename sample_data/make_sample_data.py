"""Regenerate the committed sample cohorts in this folder (seeded: same bytes every run).

Run from the project root: ``python sample_data/make_sample_data.py``. Same as
``medtrans sample-data sample_data`` with the defaults below. Prints sizes and generation time.
"""

from __future__ import annotations

from pathlib import Path

from medtrans.phantoms import write_cohorts

HERE = Path(__file__).resolve().parent
N_PAIRED = 8
N_UNPAIRED = 8
SIZE = "small"
SEED = 0


def folder_mb(folder: Path) -> float:
    """Total size of the files under ``folder`` in MB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    """Write the cohorts and print the size of each part."""
    record = write_cohorts(HERE, N_PAIRED, N_UNPAIRED, SIZE, SEED)
    for part in ("paired", "unpaired/healthy", "unpaired/pathology", "dicom"):
        if (HERE / part).is_dir():
            print(f"{part:20s} {folder_mb(HERE / part):6.2f} MB")
    generated = sum(folder_mb(HERE / part) for part in ("paired", "unpaired", "dicom") if (HERE / part).is_dir())
    print(f"{'total':20s} {generated:6.2f} MB, {len(record['subjects'])} subjects in {record['seconds']:.1f} s")


if __name__ == "__main__":
    main()

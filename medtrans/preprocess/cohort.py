"""Find the subjects of a cohort in a folder layout or a CSV (layouts in docs/preprocess.md).

Paired: ``<root>/<sid>/mr.<ext>`` + ``<root>/<sid>/ct.<ext>`` (or DICOM folders ``mr/``, ``ct/``),
or a CSV with columns subject, mr, ct. Unpaired: ``<root>/<sid>.<ext>``, ``<root>/<sid>/image.<ext>``
or a DICOM folder ``<root>/<sid>/``, or a CSV with columns subject, image. ``<ext>`` is any format
`medtrans.io.read_volume` reads (.nii, .nii.gz, .mha, .mhd, .nrrd, .nhdr). Other files (a
lesion mask, truth.json, a README) and hidden entries are ignored.

Example:
    >>> subjects = paired_from_folder(Path("sample_data/paired"))     # doctest: +SKIP
    >>> subjects[0].inputs                                            # doctest: +SKIP
    {'mr': PosixPath('.../s000/mr.nii.gz'), 'ct': PosixPath('.../s000/ct.nii.gz')}
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from medtrans.config import DataConfig
from medtrans.errors import MedtransError
from medtrans.io.files import READ_SUFFIXES, volume_suffix

DICOM_MAGIC_OFFSET = 128


@dataclass(frozen=True)
class Subject:
    """One subject to preprocess: its ID, domain ('paired', 'a' or 'b') and input paths by role.

    ``inputs`` has keys 'mr' and 'ct' (paired) or 'image' (unpaired, whose ``modality`` is given).
    """

    subject: str
    domain: str
    inputs: dict[str, Path]
    modality: Optional[str] = None

    @property
    def key(self) -> str:
        """Unique name across domains, used for the output folder: ``<sid>`` or ``<domain>/<sid>``."""
        return self.subject if self.domain == "paired" else f"{self.domain}/{self.subject}"


def check_subject_id(subject: str, where: str) -> str:
    """Refuse IDs that cannot be a folder name."""
    if not subject or subject.startswith(".") or "/" in subject or "\\" in subject or subject != subject.strip():
        raise MedtransError(f"{where}: subject ID {subject!r} cannot be used as a folder name")
    return subject


def is_dicom_folder(folder: Path) -> bool:
    """True when ``folder`` directly holds at least one DICOM file (.dcm, or the 'DICM' preamble)."""
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() == ".dcm":
            return True
        with open(path, "rb") as fh:
            fh.seek(DICOM_MAGIC_OFFSET)
            if fh.read(4) == b"DICM":
                return True
    return False


def find_role(folder: Path, role: str) -> Optional[Path]:
    """The volume named ``<role>.<ext>`` or the DICOM folder ``<role>/`` inside ``folder``, if any.

    Raises:
        MedtransError: when several candidates exist (e.g. mr.nii.gz and mr.nrrd).
    """
    candidates = [p for p in folder.iterdir()
                  if (p.is_file() and volume_suffix(p) in READ_SUFFIXES and p.name[: -len(volume_suffix(p))] == role)
                  or (p.is_dir() and p.name == role)]
    if len(candidates) > 1:
        names = ", ".join(sorted(p.name for p in candidates))
        raise MedtransError(f"{folder}: several inputs for '{role}' ({names}); keep one")
    return candidates[0] if candidates else None


def visible_entries(root: Path) -> list[Path]:
    """Entries of ``root`` not starting with '.', sorted by name."""
    if not root.is_dir():
        raise MedtransError(f"{root}: input folder not found")
    return sorted((p for p in root.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def paired_from_folder(root: Path) -> list[Subject]:
    """Subjects of a paired folder ``<root>/<sid>/{mr,ct}.<ext>`` (or DICOM folders ``mr/``, ``ct/``)."""
    subjects = []
    for folder in (p for p in visible_entries(root) if p.is_dir()):
        inputs = {role: find_role(folder, role) for role in ("mr", "ct")}
        missing = [role for role, path in inputs.items() if path is None]
        if missing:
            raise MedtransError(
                f"{folder}: no {' or '.join(missing)} scan; a paired subject folder needs mr.<ext> and "
                f"ct.<ext> (.nii, .nii.gz, .mha, .nrrd) or DICOM folders mr/ and ct/"
            )
        subjects.append(Subject(check_subject_id(folder.name, str(folder)), "paired", inputs))
    return subjects


def unpaired_from_folder(root: Path, domain: str, modality: str) -> list[Subject]:
    """Subjects of an unpaired folder: ``<sid>.<ext>`` files, ``<sid>/image.<ext>`` or ``<sid>/`` DICOM folders."""
    subjects = []
    for entry in visible_entries(root):
        if entry.is_file():
            if volume_suffix(entry) not in READ_SUFFIXES:
                continue
            subject, path = entry.name[: -len(volume_suffix(entry))], entry
        else:
            path = find_role(entry, "image")
            if path is None and is_dicom_folder(entry):
                path = entry
            if path is None:
                raise MedtransError(
                    f"{entry}: neither image.<ext> (.nii, .nii.gz, .mha, .nrrd) nor DICOM files; "
                    "an unpaired subject is <sid>.<ext>, <sid>/image.<ext> or a DICOM folder <sid>/"
                )
            subject = entry.name
        subjects.append(Subject(check_subject_id(subject, str(entry)), domain, {"image": path}, modality))
    return subjects


def from_csv(table: Path, roles: tuple[str, ...], domain: str, modality: Optional[str]) -> list[Subject]:
    """Subjects of a CSV with columns ``subject`` and ``roles``; relative paths start at the CSV's folder."""
    try:
        with open(table, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = set(reader.fieldnames or ())
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MedtransError(f"{table}: cannot read the CSV: {err}") from None
    needed = {"subject", *roles}
    if not needed <= columns:
        raise MedtransError(f"{table}: needs columns {', '.join(sorted(needed))}; found {', '.join(sorted(columns)) or 'none'}")
    subjects = []
    for line, row in enumerate(rows, start=2):
        where = f"{table} line {line}"
        inputs = {}
        for role in roles:
            value = (row[role] or "").strip()
            path = (table.parent / value).resolve()
            if not value or not path.exists():
                raise MedtransError(f"{where}: {role} file {value!r} not found (looked at {path})")
            inputs[role] = path
        subjects.append(Subject(check_subject_id((row["subject"] or "").strip(), where), domain, inputs, modality))
    return subjects


def cohort_subjects(source: Path, roles: tuple[str, ...], domain: str, modality: Optional[str]) -> list[Subject]:
    """Subjects of a folder or CSV ``source``; refuses an empty cohort and repeated IDs."""
    if source.is_file() and source.suffix.lower() == ".csv":
        subjects = from_csv(source, roles, domain, modality)
    elif domain == "paired":
        subjects = paired_from_folder(source)
    else:
        subjects = unpaired_from_folder(source, domain, modality or "mr")
    if not subjects:
        raise MedtransError(f"{source}: no subjects found (see docs/preprocess.md for the layouts)")
    seen: set[str] = set()
    for s in subjects:
        if s.subject in seen:
            raise MedtransError(f"{source}: subject ID {s.subject!r} appears more than once")
        seen.add(s.subject)
    return subjects


def find_cohort(data: DataConfig) -> tuple[str, list[Subject]]:
    """The mode ('paired' or 'unpaired') and every subject named by the config's data section."""
    if data.paired is not None:
        return "paired", cohort_subjects(Path(data.paired), ("mr", "ct"), "paired", None)
    return "unpaired", (cohort_subjects(Path(data.domain_a), ("image",), "a", data.modality_a)
                        + cohort_subjects(Path(data.domain_b), ("image",), "b", data.modality_b))


def input_locations(data: DataConfig, subjects: list[Subject]) -> list[Path]:
    """Folders the output must stay out of: each cohort folder, or for a CSV each input's folder."""
    locations = []
    for source in (data.paired, data.domain_a, data.domain_b):
        if source is not None and Path(source).is_dir():
            locations.append(Path(source).resolve())
    for s in subjects:
        for path in s.inputs.values():
            locations.append(path.resolve() if path.is_dir() else path.resolve().parent)
    return sorted(set(locations))

"""Volume I/O with exact geometry: NIfTI, MetaImage, NRRD and DICOM series."""

from medtrans.io.atomic import atomic_path, write_text_atomic
from medtrans.io.dicom import (
    DicomSeriesInfo,
    MultipleSeriesError,
    list_dicom_series,
    read_dicom_series,
    write_dicom_series,
)
from medtrans.io.files import is_volume_file, read_volume, write_volume
from medtrans.io.grid import Grid
from medtrans.io.volume import Volume

__all__ = [
    "DicomSeriesInfo",
    "Grid",
    "MultipleSeriesError",
    "Volume",
    "atomic_path",
    "is_volume_file",
    "list_dicom_series",
    "read_dicom_series",
    "read_volume",
    "write_dicom_series",
    "write_text_atomic",
    "write_volume",
]

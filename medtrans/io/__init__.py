"""Volume I/O with exact geometry: NIfTI, MetaImage, NRRD and DICOM series."""

from medtrans.io.atomic import atomic_path, write_text_atomic
from medtrans.io.files import is_volume_file, read_volume, write_volume
from medtrans.io.volume import Volume

__all__ = ["Volume", "atomic_path", "is_volume_file", "read_volume", "write_text_atomic", "write_volume"]

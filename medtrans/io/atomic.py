"""Atomic writes: write to a hidden temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path with ``dest``'s name as suffix; rename it to ``dest`` on success.

    A reader never sees a half-written ``dest``: on any error (or Ctrl-C) the temporary file is
    removed and ``dest`` keeps its previous content. The temporary name keeps the full file
    name, so extension-based writers (``.nii.gz``) pick the right format. An `OSError` raised
    without a file name (a write on a full disk) gets ``dest`` as its ``filename``, so the
    error says which output failed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{dest.name}")
    try:
        yield tmp
        os.replace(tmp, dest)
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(dest)) from err
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text_atomic(dest: str | Path, text: str) -> None:
    """Write ``text`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text)

"""The `medtrans` command: one subcommand per module in this package.

Each module ``medtrans/cli/<name>.py`` defines ``register(subparsers)``, which adds its parser and
sets ``run=<function(args) -> int>``. Expected user errors (`MedtransError`, and disk or
permission problems: `OSError` with ENOSPC, EDQUOT, EFBIG, EACCES, EPERM, EROFS or EIO) print one
clear line and exit 2; ``--debug`` also shows the traceback. Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import pkgutil
import sys
import traceback

import medtrans
from medtrans.errors import MedtransError

# Problems of the machine rather than of medtrans (full disk, quota, permissions, read-only or
# failing storage): shown as one line, like a `MedtransError`, instead of a traceback.
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM,
                                errno.EROFS, errno.EIO})


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand found in this package."""
    parser = argparse.ArgumentParser(
        prog="medtrans",
        description="Medical image translation: MRI -> CT synthesis (pix2pix) and unpaired "
        "translation (CycleGAN), from scans in to scans out.",
    )
    parser.add_argument("--version", action="version", version=f"medtrans {medtrans.__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not module_info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module_info.name}").register(subparsers)
    return parser


def os_error_message(err: OSError) -> str:
    """One line for a disk or permission problem: the file, what happened, and what was kept."""
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err} (free disk space or fix permissions, then rerun; completed outputs are kept)"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `medtrans` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args.run(args) or 0)
    except MedtransError as err:
        if args.debug:
            traceback.print_exc()
        print(f"medtrans {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        if err.errno not in ENVIRONMENT_ERRNOS:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"medtrans {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medtrans {args.command}: interrupted; completed outputs are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

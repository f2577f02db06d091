"""The `medtrans` command: one subcommand per module in this package.

Each module ``medtrans/cli/<name>.py`` defines ``register(subparsers)``, which adds its parser and
sets ``run=<function(args) -> int>``. Expected user errors (`MedtransError`) print one clear line
and exit 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback

import medtrans
from medtrans.errors import MedtransError


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
    except KeyboardInterrupt:
        print(f"medtrans {args.command}: interrupted; completed outputs are kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The run folder: resolved config, environment record, and the paths every stage agrees on."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

from medtrans.config import Config, dump_config
from medtrans.io import write_text_atomic


def git_commit(folder: Path) -> str | None:
    """The git commit of the checkout holding ``folder``, or None outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(device: torch.device, seed: int) -> dict:
    """Versions, device and seed: what it takes to reproduce a run."""
    import monai
    import numpy
    import SimpleITK

    import medtrans

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "medtrans": medtrans.__version__,
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": numpy.__version__,
        "simpleitk": SimpleITK.Version_VersionString(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "seed": seed,
        "git_commit": git_commit(Path(medtrans.__file__).parent),
    }


def write_run_records(cfg: Config, device: torch.device) -> None:
    """Write config.yaml and environment.json into the run folder."""
    run_dir = cfg.run_dir
    write_text_atomic(run_dir / "config.yaml", dump_config(cfg))
    write_text_atomic(run_dir / "environment.json", json.dumps(environment(device, cfg.seed), indent=2) + "\n")

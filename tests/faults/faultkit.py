"""Helpers of the fault-injection suite: run the CLI (in-process or as a child process), inject a
fault, and check what the command left behind.

There is deliberately no ``tests/faults/conftest.py``: pytest imports every non-package conftest
as the module ``conftest``, and a second one would replace ``tests/conftest.py`` for the tests that
run after it (``from conftest import rotation_matrix``). ``tests/conftest.py`` is loaded for this
folder too, which puts ``tests/`` on ``sys.path``, so ``from fakes import ...`` works here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch
import yaml

from medtrans.cli import main

TESTS_DIR = Path(__file__).resolve().parents[1]
REPO = TESTS_DIR.parent
# Prefixes of the hidden names atomic writers use; none may remain after a handled fault.
TEMP_PREFIXES = (".tmp-", ".old-")
# Longest wait for a child process to show progress or to exit after a signal (seconds). Generous:
# the test machine is shared, and a child first spends seconds importing torch.
CHILD_TIMEOUT_S = 120.0

# A tiny 2D pix2pix run: trains in well under a second per step on a CPU.
TINY_TRAIN = {"steps": 6, "batch_size": 2, "val_every": 3, "checkpoint_every": 3, "log_every": 1,
              "device": "cpu", "amp": "none"}


@dataclass(frozen=True)
class CliResult:
    """Exit code and captured output of one `medtrans` command."""

    code: int
    out: str
    err: str

    def error_lines(self, command: str) -> list[str]:
        """stderr lines that are the CLI's one-line error for ``command``."""
        return [line for line in self.err.splitlines() if line.startswith(f"medtrans {command}: error: ")]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> CliResult:
    """Run ``medtrans argv`` in this process; returns exit code, stdout and stderr."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def assert_clean_error(result: CliResult, command: str, *needles: str) -> str:
    """Assert exit code 2, one error line naming every needle, and no traceback; returns the line."""
    assert result.code == 2, f"exit code {result.code}\nstdout: {result.out}\nstderr: {result.err}"
    assert "Traceback" not in result.err, result.err
    lines = result.error_lines(command)
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def assert_debug_shows_traceback(argv: list[str], capsys: pytest.CaptureFixture, command: str) -> None:
    """With ``--debug`` the same failure prints the traceback and still the one-line error, exit 2."""
    result = run_cli(["--debug", *argv], capsys)
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err
    assert len(result.error_lines(command)) == 1


def temp_leftovers(root: Path) -> list[Path]:
    """Hidden temporary files or folders of atomic writers under ``root``."""
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIXES)]


def assert_no_temp_files(root: Path) -> None:
    """No ``.tmp-*`` / ``.old-*`` file or folder is left anywhere under ``root``."""
    leftovers = temp_leftovers(root)
    assert not leftovers, f"temporary files left behind: {leftovers}"


def files_under(root: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``root`` (a snapshot to compare after a fault)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_config(path: Path, values: dict) -> Path:
    """Write a study config as YAML."""
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def tiny_train_values(tmp_path: Path, name: str = "run", **train: object) -> dict:
    """Config values of a tiny paired pix2pix run under ``tmp_path/runs`` (as tests/test_train.py)."""
    return {
        "name": name, "seed": 1, "output_root": str(tmp_path / "runs"), "data": {"paired": str(tmp_path / "in")},
        "dataset": {"kind": "2d", "augment": False, "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"ngf": 8, "ndf": 8, "dropout": 0.0},
        "train": {"recipe": "pix2pix", **TINY_TRAIN, **train},
    }


@pytest.fixture
def single_torch_thread() -> Iterator[None]:
    """One intra-op thread for torch in this process (restored after the test).

    The suite runs on shared 2-core machines: several OpenMP thread pools spinning against each
    other make a 20 ms training step take seconds. One thread here and in children (`Child`)
    keeps the cases fast, and the same thread count everywhere keeps the resumed-training
    comparison bitwise exact.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# `python -c` program of a paced child: argv is (dotted function, seconds, medtrans arguments...).
PACED_MAIN = """
import functools, importlib, sys, time
from medtrans.cli import main
module_name, _, name = sys.argv[1].rpartition(".")
module, seconds = importlib.import_module(module_name), float(sys.argv[2])
original = getattr(module, name)

@functools.wraps(original)
def paced(*args, **kwargs):
    time.sleep(seconds)
    return original(*args, **kwargs)

setattr(module, name, paced)
sys.exit(main(sys.argv[3:]))
"""


class Child:
    """A `medtrans` command running as a child process (one torch thread, see `single_torch_thread`),
    its output going to files in ``log_dir``."""

    def __init__(self, argv: list[str], log_dir: Path, cwd: Path | None = None,
                 pace: tuple[str, float] | None = None) -> None:
        """Start ``medtrans argv``; ``pace`` = (dotted function, seconds) sleeps before each call of it.

        Pacing the per-item function (one scan, one volume, one subject) keeps a child busy long
        enough for a signal to land mid-batch however fast the machine or the code becomes.
        """
        log_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = log_dir / "stdout.txt"
        self.stderr_path = log_dir / "stderr.txt"
        # OMP_NUM_THREADS is how torch's thread count is set from outside a process.
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        launcher = ["-c", PACED_MAIN, pace[0], str(pace[1])] if pace else ["-m", "medtrans"]
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen([sys.executable, *launcher, *map(str, argv)],
                                            cwd=cwd or REPO, stdout=out, stderr=err, env=env)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_until(self, condition: Callable[[], bool], what: str, timeout_s: float = CHILD_TIMEOUT_S) -> None:
        """Poll ``condition`` until true; fail (and kill the child) on timeout or early exit."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            if self.process.poll() is not None:
                pytest.fail(f"child exited with {self.process.returncode} before {what}\nstderr: {self.stderr[-3000:]}")
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"timed out waiting for {what}\nstderr: {self.stderr[-3000:]}")

    def send(self, sig: int) -> int:
        """Send ``sig`` and wait for the child to exit; returns its exit code (negative: killed by a signal)."""
        self.process.send_signal(sig)
        return self.wait(f"child did not exit after signal {sig}")

    def interrupt(self) -> int:
        """Ctrl-C: SIGINT, then the exit code."""
        return self.send(signal.SIGINT)

    def wait(self, failure: str = "child did not finish") -> int:
        """Wait for the child to exit; returns the exit code (kills it and fails with ``failure`` on timeout)."""
        try:
            return self.process.wait(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{failure}\nstderr: {self.stderr[-3000:]}")

    def kill(self) -> None:
        """SIGKILL (if still running) and reap."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def assert_interrupted(code: int, child: Child, command: str) -> None:
    """Exit code 130 with the interruption line and no traceback."""
    assert code == 130, f"exit code {code}\nstderr: {child.stderr[-3000:]}"
    assert f"medtrans {command}: interrupted; completed outputs are kept, rerun to resume" in child.stderr
    assert "Traceback" not in child.stderr, child.stderr[-3000:]


def readable_volumes_only(folder: Path) -> list[str]:
    """Names of the (visible) volume files in ``folder``; each must read back as a complete volume."""
    from medtrans.io import read_volume

    names = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith("."):
            continue
        vol = read_volume(path)
        assert np.isfinite(vol.array.astype(np.float64)).all(), path
        names.append(path.name)
    return names


# An inference checkpoint (freshly initialised tiny U-Net; the values do not matter for faults).
INFER_CONFIG = {"name": "inf", "data": {"paired": "x"},
                "preprocess": {"spacing_mm": [3.0, 3.0, 3.0], "pad_multiple": 8},
                "model": {"ngf": 4, "ndf": 4}, "infer": {"batch_size": 8}, "train": {"amp": "none"}}
INFER_UNET = {"kind": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 4, "norm": "batch",
              "dropout": 0.5, "num_downs": 3}


def infer_checkpoint(path: Path) -> Path:
    """A pix2pix MR -> CT checkpoint as `medtrans train` writes it, with a tiny untrained U-Net."""
    from fakes import write_checkpoint

    return write_checkpoint(path, INFER_CONFIG, {"G": INFER_UNET})


def mr_scan(shape: tuple[int, int, int] = (24, 22, 12), seed: int = 0):
    """A small MR-like head volume (arbitrary units) on a 3 mm grid."""
    from fakes import head_like

    from medtrans.io import Volume

    return Volume(head_like(shape, "mr", seed), (3.0, 3.0, 3.0), (-30.0, -30.0, -15.0), np.eye(3))


def ct_scan(shape: tuple[int, int, int] = (24, 22, 12), seed: int = 0):
    """A small CT-like head volume in HU (int16) on a 3 mm grid."""
    from fakes import head_like

    from medtrans.io import Volume

    return Volume(np.round(head_like(shape, "ct", seed)).astype(np.int16), (3.0, 3.0, 3.0), (-30.0, -30.0, -15.0),
                  np.eye(3))

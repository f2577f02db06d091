"""Inference: exact output geometry, DICOM in/out, identity round trip, safe checkpoint loading."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from scipy import ndimage
from torch import nn

from conftest import rotation_matrix
from fakes import head_like, write_checkpoint
from medtrans.cli import main
from medtrans.config import config_from_dict
from medtrans.errors import CheckpointError, MedtransError
from medtrans.infer import Timing, Translator, plan_jobs, run_jobs, translate_scan
from medtrans.io import Volume, read_volume, write_dicom_series, write_volume

PAIRED = {"name": "inf", "data": {"paired": "x"}, "preprocess": {"spacing_mm": [3.0, 3.0, 3.0], "pad_multiple": 8},
          "model": {"ngf": 4, "ndf": 4}, "infer": {"batch_size": 8}, "train": {"amp": "none"}}
UNET = {"kind": "unet", "spatial_dims": 2, "in_channels": 1, "out_channels": 1, "ngf": 4, "norm": "batch",
        "dropout": 0.5, "num_downs": 3}


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    return write_checkpoint(tmp_path / "best.pt", PAIRED, {"G": UNET})


def oblique_mr() -> Volume:
    return Volume(head_like((40, 36, 22), "mr"), (1.7, 2.1, 3.3), (-40.0, 12.0, 30.0),
                  rotation_matrix((8.0, -5.0, 20.0)))


def test_output_grid_equals_an_oblique_anisotropic_input(tmp_path: Path, checkpoint: Path) -> None:
    scan = oblique_mr()
    write_volume(scan, tmp_path / "mr.nii.gz")
    assert main(["infer", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "mr.nii.gz"),
                 "--output", str(tmp_path / "sct.nii.gz"), "--device", "cpu"]) == 0
    synthetic = read_volume(tmp_path / "sct.nii.gz")
    reread = read_volume(tmp_path / "mr.nii.gz")
    assert synthetic.shape == reread.shape
    np.testing.assert_allclose(synthetic.spacing_mm, reread.spacing_mm, atol=1e-5)
    np.testing.assert_allclose(synthetic.origin_mm, reread.origin_mm, atol=1e-5)
    np.testing.assert_allclose(synthetic.direction, reread.direction, atol=1e-5)
    corner = synthetic.array[:3, :3, :3]
    assert np.all(corner == -1000), "air outside the body"
    assert synthetic.array.min() >= -1024 and synthetic.array.max() <= 3000


def test_dicom_folder_in_and_dicom_out_without_patient_tags(tmp_path: Path, checkpoint: Path) -> None:
    scan = oblique_mr()
    identity = {"PatientName": "Doe^Jane", "PatientID": "12345"}
    write_dicom_series(scan.with_array(np.round(scan.array)), tmp_path / "mr_dicom", modality="MR", identity=identity)
    translator = Translator.from_checkpoint(checkpoint, torch.device("cpu"))
    for keep, expected in ((False, "ANONYMOUS"), (True, "Doe^Jane")):
        out = tmp_path / f"sct_dicom_{keep}"
        run_jobs(translator, plan_jobs(tmp_path / "mr_dicom", out), keep_patient_tags=keep)
        synthetic = read_volume(out)
        source = read_volume(tmp_path / "mr_dicom")
        assert synthetic.same_grid(source, tol=1e-4)
        header = pydicom.dcmread(next(out.iterdir()), stop_before_pixels=True)
        assert header.Modality == "CT"
        assert str(header.get("PatientName", "")) == expected
        assert header.SeriesInstanceUID != pydicom.dcmread(next((tmp_path / "mr_dicom").iterdir())).SeriesInstanceUID


def test_identity_generator_returns_the_input(tmp_path: Path) -> None:
    cfg = config_from_dict({"name": "id", "data": {"domain_a": "a", "domain_b": "b", "modality_a": "ct", "modality_b": "ct"},
                            "train": {"recipe": "cyclegan", "amp": "none"}, "preprocess": {"spacing_mm": [1.5, 1.5, 1.5]}})
    translator = Translator(nn.Identity(), cfg, "ct", "ct", torch.device("cpu"))
    scan = Volume(head_like((48, 44, 30), "ct"), (1.2, 1.4, 2.0), (5.0, -3.0, 11.0), rotation_matrix((0.0, 4.0, -9.0)))
    synthetic = translate_scan(translator, scan)
    assert synthetic.same_grid(scan)
    error = np.abs(synthetic.array.astype(np.float32) - scan.array)
    # resampling there and back blurs the thin 900 HU shell; away from it the input comes back
    near_shell = ndimage.binary_dilation(scan.array == 900, iterations=1)
    assert error[~near_shell].mean() < 2
    assert np.percentile(error[~near_shell], 99) < 25


def test_batch_folder_writes_one_output_per_scan(tmp_path: Path, checkpoint: Path) -> None:
    inputs = tmp_path / "scans"
    for name in ("s1", "s2"):
        write_volume(oblique_mr(), inputs / f"{name}.nii.gz")
    jobs = plan_jobs(inputs, tmp_path / "out")
    assert [j.subject for j in jobs] == ["s1", "s2"]
    timing = run_jobs(Translator.from_checkpoint(checkpoint, torch.device("cpu")), jobs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s1.nii.gz", "s2.nii.gz"]
    assert 0 < timing.network_s < timing.total_s


def test_output_may_not_overwrite_the_input(tmp_path: Path, checkpoint: Path) -> None:
    write_volume(oblique_mr(), tmp_path / "mr.nii.gz")
    before = (tmp_path / "mr.nii.gz").read_bytes()
    assert main(["infer", "--checkpoint", str(checkpoint), "--input", str(tmp_path / "mr.nii.gz"),
                 "--output", str(tmp_path / "mr.nii.gz")]) == 2
    assert (tmp_path / "mr.nii.gz").read_bytes() == before


def test_checkpoint_of_another_architecture_is_refused(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "a.pt", PAIRED, {"G": UNET})
    payload = torch.load(path, weights_only=True)
    payload["network_args"]["G"] = {**UNET, "ngf": 8}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        Translator.from_checkpoint(path, torch.device("cpu"))


class Payload:
    def __reduce__(self):
        return (print, ("this would have run",))


def test_crafted_pickle_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "medtrans-checkpoint", "version": 1, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        Translator.from_checkpoint(path, torch.device("cpu"))
    assert "this would have run" not in capsys.readouterr().out
    (tmp_path / "raw.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError):
        Translator.from_checkpoint(tmp_path / "raw.pt", torch.device("cpu"))


def test_cyclegan_direction_needs_a_cyclegan_checkpoint(checkpoint: Path) -> None:
    with pytest.raises(MedtransError, match="needs a CycleGAN checkpoint"):
        Translator.from_checkpoint(checkpoint, torch.device("cpu"), direction="ba")


def test_real_ct_keeps_its_grid(real_data: Path) -> None:
    cfg = config_from_dict({"name": "id", "data": {"domain_a": "a", "domain_b": "b", "modality_a": "ct", "modality_b": "ct"},
                            "train": {"recipe": "cyclegan", "amp": "none"}, "preprocess": {"spacing_mm": [2.0, 2.0, 5.0]}})
    scan = read_volume(real_data / "lung1_image.nrrd")
    timing = Timing()
    synthetic = translate_scan(Translator(nn.Identity(), cfg, "ct", "ct", torch.device("cpu")), scan, timing=timing)
    assert synthetic.same_grid(scan)
    body = scan.array > -300
    assert np.median(np.abs(synthetic.array[body].astype(np.float32) - scan.array[body])) < 60
    assert (synthetic.array[~body & (scan.array < -990)] <= -900).mean() > 0.95

"""Tests for `medtrans.io.dicom`: DICOM series reading (real files, folders as found in the wild)
and writing (round trips, tags, SimpleITK/pydicom readability, atomicity)."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from conftest import rotation_matrix
from pydicom.data import get_testdata_file

from medtrans.errors import MedtransError, VolumeReadError
from medtrans.io import MultipleSeriesError, Volume, list_dicom_series, read_volume, write_dicom_series

PYDICOM_DATA = Path(get_testdata_file("CT_small.dcm")).parent
DICOMDIR_TESTS = PYDICOM_DATA / "dicomdirtests"
CT5N = DICOMDIR_TESTS / "98892001" / "CT5N"  # 5 real CT slices, 2.5 mm apart, files numbered against z
CT5N_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"
SCOUT_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.2"
OBLIQUE = rotation_matrix((12.0, -7.0, 25.0))
LEFT_HANDED = OBLIQUE @ np.diag([1.0, 1.0, -1.0])
DIRECTIONS = {"identity": np.eye(3), "oblique": OBLIQUE, "left-handed": LEFT_HANDED, "ras": np.diag([-1.0, -1.0, 1.0])}


def ct_volume(direction: np.ndarray = OBLIQUE, shape: tuple[int, int, int] = (7, 9, 6)) -> Volume:
    """Integer HU on an anisotropic grid (spacing differs on every axis, so PixelSpacing order matters)."""
    hu = np.random.default_rng(0).integers(-1024, 3071, size=shape).astype(np.int16)
    return Volume(hu, (0.7, 1.3, 2.9), (-12.5, 30.25, 7.0), direction)


def mr_volume(direction: np.ndarray = OBLIQUE) -> Volume:
    values = np.random.default_rng(1).gamma(2.0, 150.0, size=(7, 9, 6)).astype(np.float32)
    return Volume(values, (0.9, 0.8, 3.3), (100.0, -50.5, -20.0), direction)


def assert_same_volume(actual: Volume, expected: Volume, tol: float = 1e-5) -> None:
    assert np.array_equal(actual.array, expected.array)
    assert actual.same_grid(expected, tol=tol)


def assert_same_world(a: Volume, b: Volume, tol: float = 1e-4) -> None:
    """Every voxel of ``a`` sits on a voxel of ``b`` with the same value, to float32 precision (any flips)."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in a.shape], indexing="ij"), -1).reshape(-1, 3)
    in_b = b.world_to_index(a.index_to_world(ijk))
    assert np.allclose(in_b, np.rint(in_b), atol=tol)
    in_b = np.rint(in_b).astype(int)
    assert np.allclose(a.array[tuple(ijk.T)], b.array[tuple(in_b.T)], rtol=1e-6, atol=0)


def series_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def sitk_read_series(folder: Path) -> Volume:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return Volume.from_sitk(reader.Execute())


def copy_files(files: list[Path], folder: Path, names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(files):
        shutil.copy(path, folder / (names[index] if names else path.name))
    return folder


# --- writing and round trips ----------------------------------------------------------------


@pytest.mark.parametrize("direction", DIRECTIONS.values(), ids=DIRECTIONS.keys())
def test_ct_round_trip_is_exact(tmp_path: Path, direction: np.ndarray) -> None:
    vol = ct_volume(direction)
    back = read_volume(write_dicom_series(vol, tmp_path / "ct", modality="CT"))
    assert back.array.dtype == np.int16
    assert_same_volume(back, vol)
    assert back.orientation == vol.orientation
    again = read_volume(write_dicom_series(back, tmp_path / "ct2", modality="CT"))
    assert_same_volume(again, vol)


@pytest.mark.parametrize("direction", [OBLIQUE, LEFT_HANDED], ids=["oblique", "left-handed"])
def test_mr_round_trip_is_within_half_its_slope(tmp_path: Path, direction: np.ndarray) -> None:
    vol = mr_volume(direction)
    folder = write_dicom_series(vol, tmp_path / "mr", modality="MR")
    slope = float(pydicom.dcmread(series_files(folder)[0]).RescaleSlope)
    assert 0 < slope < (vol.array.max() - vol.array.min()) / 30000  # the slope uses the stored range
    back = read_volume(folder)
    assert back.same_grid(vol, tol=1e-5)
    error = np.abs(back.array.astype(np.float64) - vol.array)
    assert error.max() <= slope / 2 * (1 + 1e-6) + 1e-4
    assert error.max() > 0  # float values really were quantized, not copied


def test_integer_mr_round_trip_is_exact(tmp_path: Path) -> None:
    vol = ct_volume().with_array(np.random.default_rng(4).integers(0, 4000, (7, 9, 6)).astype(np.uint16))
    back = read_volume(write_dicom_series(vol, tmp_path / "mr", modality="MR"))
    assert np.array_equal(back.array, vol.array)


def test_float_ct_is_rounded_to_whole_hu(tmp_path: Path) -> None:
    vol = ct_volume().with_array(np.random.default_rng(5).uniform(-1000, 2000, (7, 9, 6)).astype(np.float32))
    back = read_volume(write_dicom_series(vol, tmp_path / "ct"))
    assert np.array_equal(back.array, np.rint(vol.array))


@pytest.mark.parametrize(("high_hu", "exact"), [(60000, True), (100000, False)])
def test_ct_beyond_int16_keeps_whole_hu_or_uses_a_slope(tmp_path: Path, high_hu: int, exact: bool) -> None:
    hu = np.linspace(-1024, high_hu, 7 * 9 * 6).round().reshape(7, 9, 6)
    back = read_volume(write_dicom_series(ct_volume().with_array(hu), tmp_path / "ct"))
    slope = float(pydicom.dcmread(series_files(tmp_path / "ct")[0]).RescaleSlope)
    assert (slope == 1.0) == exact
    assert np.abs(back.array - hu).max() <= (0 if exact else slope / 2 + 1e-6)


def test_single_slice_round_trip(tmp_path: Path) -> None:
    vol = ct_volume(OBLIQUE, shape=(5, 4, 1))
    assert_same_volume(read_volume(write_dicom_series(vol, tmp_path / "one")), vol)


def test_written_tags_describe_the_geometry(tmp_path: Path) -> None:
    vol = ct_volume()
    files = series_files(write_dicom_series(vol, tmp_path / "ct", series_description="sCT test"))
    headers = [pydicom.dcmread(f) for f in files]
    assert len(headers) == vol.shape[2]
    for k, ds in enumerate(headers):
        assert ds.Modality == "CT" and ds.SOPClassUID == pydicom.uid.CTImageStorage
        assert (ds.Rows, ds.Columns) == (vol.shape[1], vol.shape[0])
        assert np.allclose([float(v) for v in ds.PixelSpacing], [1.3, 0.7])  # row spacing first
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 2.9
        assert np.allclose([float(v) for v in ds.ImageOrientationPatient], vol.direction[:, :2].T.ravel())
        assert np.allclose([float(v) for v in ds.ImagePositionPatient], vol.index_to_world((0, 0, k)), atol=1e-9)
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
        assert ds.PixelRepresentation == 1 and ds.BitsAllocated == 16
        assert np.array_equal(ds.pixel_array.T + -1024, vol.array[:, :, k])
        assert ds.SeriesDescription == "sCT test"
    for keyword in ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert len({str(ds[keyword].value) for ds in headers}) == 1
        assert pydicom.uid.UID(str(headers[0][keyword].value)).is_valid
    assert len({ds.SOPInstanceUID for ds in headers}) == len(headers)


def test_every_write_gets_fresh_uids(tmp_path: Path) -> None:
    first = pydicom.dcmread(series_files(write_dicom_series(ct_volume(), tmp_path / "a"))[0])
    second = pydicom.dcmread(series_files(write_dicom_series(ct_volume(), tmp_path / "b"))[0])
    for keyword in ("SeriesInstanceUID", "StudyInstanceUID", "FrameOfReferenceUID", "SOPInstanceUID"):
        assert first[keyword].value != second[keyword].value


def test_no_patient_identity_is_written_by_default(tmp_path: Path) -> None:
    ds = pydicom.dcmread(series_files(write_dicom_series(mr_volume(), tmp_path / "mr", modality="MR"))[0])
    assert str(ds.PatientName) == str(ds.PatientID) == "ANONYMOUS"
    assert ds.PatientBirthDate == "" and ds.PatientSex == "" and ds.AccessionNumber == ""
    assert ds.PatientIdentityRemoved == "YES"


def test_identity_from_a_read_series_is_copied(tmp_path: Path) -> None:
    source = read_volume(copy_files([Path(get_testdata_file("CT_small.dcm"))], tmp_path / "src"))
    identity = source.meta["dicom_identity"]
    assert identity["PatientName"] == "CompressedSamples^CT1" and identity["PatientID"] == "1CT1"
    assert "CompressedSamples" not in str(source.describe())
    folder = write_dicom_series(source, tmp_path / "out", identity=identity)
    ds = pydicom.dcmread(series_files(folder)[0])
    assert str(ds.PatientName) == "CompressedSamples^CT1"
    assert ds.StudyInstanceUID == identity["StudyInstanceUID"]
    assert ds.SeriesInstanceUID != source.meta["series_uid"]
    assert "PatientIdentityRemoved" not in ds
    assert read_volume(folder).meta["dicom_identity"] == identity


def test_identity_keys_must_be_patient_or_study_tags(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ImagePositionPatient"):
        write_dicom_series(ct_volume(), tmp_path / "ct", identity={"ImagePositionPatient": "0\\0\\0"})
    assert not (tmp_path / "ct").exists()


@pytest.mark.parametrize("direction", [OBLIQUE, LEFT_HANDED], ids=["oblique", "left-handed"])
def test_simpleitk_reads_written_series(tmp_path: Path, direction: np.ndarray) -> None:
    for vol, modality in ((ct_volume(direction), "CT"), (mr_volume(direction), "MR")):
        folder = write_dicom_series(vol, tmp_path / modality, modality=modality)
        ours, theirs = read_volume(folder), sitk_read_series(folder)
        assert_same_world(ours, theirs)
        assert np.allclose(theirs.spacing_mm, vol.spacing_mm, atol=1e-5)
        if np.linalg.det(direction) > 0:  # ITK always stacks along the normal
            assert theirs.same_grid(vol, tol=1e-5)


def test_refuses_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    with pytest.raises(MedtransError, match="not empty") as err:
        write_dicom_series(ct_volume(), folder)
    assert str(folder) in str(err.value)
    assert (folder / "keep.txt").read_text() == "precious"
    write_dicom_series(ct_volume(), folder, overwrite=True)
    assert not (folder / "keep.txt").exists()
    assert_same_volume(read_volume(folder), ct_volume())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_writes_into_an_existing_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert_same_volume(read_volume(write_dicom_series(ct_volume(), tmp_path / "out")), ct_volume())


@pytest.mark.faults
def test_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    array = np.zeros((4, 4, 3), np.float32)
    array[1, 1, 1] = np.nan
    with pytest.raises(MedtransError, match="NaN"):
        write_dicom_series(Volume(array, (1, 1, 1), (0, 0, 0), np.eye(3)), tmp_path / "out", modality="MR")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.faults
def test_refuses_a_file_as_folder(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(MedtransError, match="not a folder"):
        write_dicom_series(ct_volume(), tmp_path / "out", overwrite=True)


def test_unknown_modality_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="modality"):
        write_dicom_series(ct_volume(), tmp_path / "pet", modality="PT")


# --- real files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "intercept"), [("CT_small.dcm", -1024), ("MR_small.dcm", 0)])
def test_real_single_slice_files(tmp_path: Path, name: str, intercept: int) -> None:
    source = Path(get_testdata_file(name))
    vol = read_volume(copy_files([source], tmp_path / "series"))
    ds = pydicom.dcmread(source)
    assert vol.shape == (ds.Columns, ds.Rows, 1)
    assert np.array_equal(vol.array[:, :, 0], ds.pixel_array.T.astype(np.int32) + intercept)
    assert np.allclose(vol.origin_mm, [float(v) for v in ds.ImagePositionPatient])
    assert np.allclose(vol.spacing_mm[:2], [float(v) for v in ds.PixelSpacing][::-1])
    assert vol.spacing_mm[2] == float(ds.SliceThickness)
    assert vol.meta["modality"] == ds.Modality and vol.meta["series_uid"] == ds.SeriesInstanceUID
    assert vol.meta["n_files"] == 1


def test_compressed_file_without_pydicom_plugin_is_decoded(tmp_path: Path) -> None:
    plain = read_volume(copy_files([Path(get_testdata_file("MR_small.dcm"))], tmp_path / "plain"))
    jpeg_ls = read_volume(copy_files([Path(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))], tmp_path / "jls"))
    assert_same_volume(jpeg_ls, plain)


def test_real_ct_series_matches_simpleitk(tmp_path: Path) -> None:
    vol = read_volume(CT5N)
    assert vol.shape == (16, 16, 5)
    assert np.allclose(vol.spacing_mm, (0.488281, 0.488281, 2.5), atol=1e-6)
    assert vol.meta["series_description"] == "SmartScore - Gated 0.5 sec"
    numbers = [pydicom.dcmread(f).InstanceNumber for f in series_files(CT5N)]
    assert vol.orientation == "LPI"  # k follows InstanceNumber, which runs feet-ward here
    assert sorted(numbers) == list(range(6, 11))
    assert_same_world(vol, sitk_read_series(CT5N))
    assert_same_volume(read_volume(write_dicom_series(vol, tmp_path / "copy")), vol)


def test_shuffled_file_names_give_the_same_volume(tmp_path: Path) -> None:
    files = series_files(CT5N)
    names = [f"img{i}.dcm" for i in range(len(files))]
    random.Random(7).shuffle(names)
    shuffled = read_volume(copy_files(files, tmp_path / "shuffled", names))
    assert_same_volume(shuffled, read_volume(CT5N), tol=1e-9)
    written = write_dicom_series(ct_volume(LEFT_HANDED), tmp_path / "written")
    written_files = series_files(written)
    reversed_names = [f"z{len(written_files) - i:03d}" for i in range(len(written_files))]
    assert_same_volume(read_volume(copy_files(written_files, tmp_path / "renamed", reversed_names)),
                       ct_volume(LEFT_HANDED))


def test_folder_with_two_series_is_refused_with_listing(tmp_path: Path) -> None:
    folder = DICOMDIR_TESTS / "98892001"
    with pytest.raises(MultipleSeriesError) as err:
        read_volume(folder)
    message = str(err.value)
    assert str(folder) in message
    for expected in (CT5N_UID, SCOUT_UID, "SmartScore - Gated 0.5 sec", "Scout", "5 file(s)", "2 file(s)", "CT"):
        assert expected in message
    assert {(s.series_uid, s.n_files) for s in err.value.series} == {(CT5N_UID, 5), (SCOUT_UID, 2)}
    assert_same_volume(read_volume(folder, series_uid=CT5N_UID), read_volume(CT5N), tol=1e-9)
    assert [s.series_uid for s in list_dicom_series(folder)] == sorted([CT5N_UID, SCOUT_UID])


@pytest.mark.faults
def test_unknown_series_uid_lists_the_series() -> None:
    with pytest.raises(VolumeReadError, match="no series with SeriesInstanceUID 1.2.3") as err:
        read_volume(DICOMDIR_TESTS / "98892001", series_uid="1.2.3")
    assert CT5N_UID in str(err.value)


def test_non_dicom_files_and_dicomdir_are_skipped(tmp_path: Path) -> None:
    folder = copy_files(series_files(CT5N), tmp_path / "export")
    shutil.copy(DICOMDIR_TESTS / "DICOMDIR", folder / "DICOMDIR")
    shutil.copy(DICOMDIR_TESTS / "README.txt", folder / "README.txt")
    (folder / "notes").write_text("scanned on Tuesday")
    vol = read_volume(folder)
    assert vol.meta["n_files"] == 5
    assert_same_volume(vol, read_volume(CT5N), tol=1e-9)


def test_real_lung_ct_round_trips_through_dicom(real_data: Path, tmp_path: Path) -> None:
    vol = read_volume(real_data / "lung1_image.nrrd")
    folder = write_dicom_series(vol, tmp_path / "lung1", modality="CT")
    assert len(series_files(folder)) == 48
    back = read_volume(folder)
    assert back.array.dtype == np.int16
    assert (int(back.array.min()), int(back.array.max())) == (-1024, 3071)
    assert_same_volume(back, vol)


def test_real_brain_mr_round_trips_through_dicom(real_data: Path, tmp_path: Path) -> None:
    vol = read_volume(real_data / "brain1_image.nrrd")
    back = read_volume(write_dicom_series(vol, tmp_path / "brain1", modality="MR"))
    assert back.meta["modality"] == "MR"
    assert_same_volume(back, vol)


# --- folders as found in the wild: bad input ------------------------------------------------


@pytest.mark.faults
def test_real_series_with_missing_slices_names_the_file() -> None:
    folder = DICOMDIR_TESTS / "77654033" / "CT2"  # 4 slices: one 200 mm away from the other three
    with pytest.raises(VolumeReadError, match="uneven slice spacing") as err:
        read_volume(folder)
    assert str(folder / "17136") in str(err.value)


@pytest.mark.faults
def test_missing_slice_names_the_files_around_the_gap(tmp_path: Path) -> None:
    folder = write_dicom_series(ct_volume(), tmp_path / "ct")
    files = series_files(folder)
    files[3].unlink()
    with pytest.raises(VolumeReadError, match="uneven slice spacing") as err:
        read_volume(folder)
    assert files[2].name in str(err.value) and files[4].name in str(err.value)


@pytest.mark.faults
def test_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(VolumeReadError, match="folder is empty") as err:
        read_volume(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(err.value)


@pytest.mark.faults
def test_folder_without_dicom_images_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(DICOMDIR_TESTS / "README.txt", folder / "README.txt")
    shutil.copy(DICOMDIR_TESTS / "DICOMDIR", folder / "DICOMDIR")
    with pytest.raises(VolumeReadError, match="no DICOM image files") as err:
        read_volume(folder)
    assert "README.txt" in str(err.value)


@pytest.mark.faults
@pytest.mark.parametrize(
    "content", [b"\0" * 128 + b"DICM" + bytes(range(256)) * 3, b"this is not a DICOM file"], ids=["preamble", "suffix"]
)
def test_corrupt_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    folder = write_dicom_series(ct_volume(), tmp_path / "ct")
    bad = folder / "slice_0003.dcm"
    bad.write_bytes(content)
    with pytest.raises(VolumeReadError, match="corrupt") as err:
        read_volume(folder)
    assert str(bad) in str(err.value)


@pytest.mark.faults
def test_truncated_pixel_data_names_the_file(tmp_path: Path) -> None:
    folder = write_dicom_series(ct_volume(), tmp_path / "ct")
    bad = series_files(folder)[2]
    bad.write_bytes(bad.read_bytes()[:-40])
    with pytest.raises(VolumeReadError, match="truncated") as err:
        read_volume(folder)
    assert str(bad) in str(err.value)


@pytest.mark.faults
def test_real_multi_plane_series_is_refused() -> None:
    folder = DICOMDIR_TESTS / "98892003" / "MR700"
    with pytest.raises(VolumeReadError, match="ImageOrientationPatient differs") as err:
        read_volume(folder)
    assert str(folder) in str(err.value)


@pytest.mark.faults
def test_real_projection_image_is_refused() -> None:
    with pytest.raises(VolumeReadError, match="lacks ImagePositionPatient") as err:
        read_volume(DICOMDIR_TESTS / "77654033" / "CR1")
    assert "6154" in str(err.value)


@pytest.mark.faults
def test_duplicate_slice_is_refused(tmp_path: Path) -> None:
    folder = write_dicom_series(ct_volume(), tmp_path / "ct")
    shutil.copy(series_files(folder)[1], folder / "copy_of_slice_2.dcm")
    with pytest.raises(VolumeReadError, match="same slice position") as err:
        read_volume(folder)
    assert "slice_0002.dcm" in str(err.value)


@pytest.mark.faults
def test_sheared_stack_is_refused(tmp_path: Path) -> None:
    folder = write_dicom_series(ct_volume(np.eye(3)), tmp_path / "ct")
    for k, path in enumerate(series_files(folder)):  # a gantry tilt: each slice shifts 1 mm in y
        ds = pydicom.dcmread(path)
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + k, z]
        ds.save_as(path)
    with pytest.raises(VolumeReadError, match="gantry tilt"):
        read_volume(folder)

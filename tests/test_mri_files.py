"""fastMRI HDF5 files in and out (restore.mri.files): round trips and every input error."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from restore.mri.files import KSpaceFile, write_reconstruction
from shared.files import InputError


def undersampled(shape, rng, every: int = 4):
    """Complex k-space of ``shape`` with only every ``every``-th column (and the centre) kept."""
    k = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    w = shape[-1]
    mask = np.zeros(w, dtype=np.float32)
    mask[::every] = 1
    mask[w // 2 - 2:w // 2 + 2] = 1
    return k * mask, mask


def write_h5(path, **datasets):
    attrs = datasets.pop("attrs", {})
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data)
        f.attrs.update(attrs)
    return path


@pytest.mark.parametrize("shape", [(3, 16, 12), (2, 4, 16, 12)])
@pytest.mark.parametrize("with_mask", [True, False])
def test_reader_round_trip_single_and_multi_coil(tmp_path, rng, shape, with_mask):
    k, mask = undersampled(shape, rng)
    extra = {"mask": mask.astype(bool)} if with_mask else {}
    path = write_h5(tmp_path / "a.h5", kspace=k, attrs={"acceleration": 4, "num_low_frequency": 4}, **extra)
    with KSpaceFile(path) as f:
        assert f.shape == shape and f.slices == shape[0] and (f.width, f.height) == (shape[-1], shape[-2])
        assert f.coils == (shape[1] if len(shape) == 4 else None)
        np.testing.assert_array_equal(f.mask, mask)    # read, or derived from the non-zero columns
        assert f.attrs["acceleration"] == 4
        np.testing.assert_array_equal(f.slice(1), k[1])


def test_writer_round_trip_and_no_temporary_left(tmp_path, rng):
    rec = rng.random((3, 8, 6)).astype(np.float32)
    std = rng.random((3, 8, 6)).astype(np.float32)
    out = tmp_path / "out" / "r.h5"
    write_reconstruction(out, rec, std, attrs={"acceleration": 8})
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["reconstruction"][()], rec)
        np.testing.assert_array_equal(f["reconstruction_std"][()], std)
        assert f["reconstruction"].dtype == np.float32 and f.attrs["acceleration"] == 8
    assert [p.name for p in out.parent.iterdir()] == ["r.h5"]
    with pytest.raises(ValueError, match="must match"):
        write_reconstruction(tmp_path / "x.h5", rec, std[:2])
    assert not (tmp_path / "x.h5").exists()


def test_input_errors_name_the_file_and_the_problem(tmp_path, rng):
    k, mask = undersampled((2, 8, 6), rng)
    nan = k.copy()
    nan[1, 2, 0] = np.nan
    (tmp_path / "text.h5").write_text("not hdf5")
    cases = {
        "not an HDF5 file": tmp_path / "text.h5",
        "no such file": tmp_path / "missing.h5",
        "no 'kspace' dataset (found: image)": write_h5(tmp_path / "b.h5", image=np.zeros((2, 4, 4))),
        "kspace must be (slices, H, W)": write_h5(tmp_path / "c.h5", kspace=k[0, 0]),
        "kspace must be complex": write_h5(tmp_path / "d.h5", kspace=np.abs(k)),
        "kspace slice 1 contains NaN": write_h5(tmp_path / "e.h5", kspace=nan),
        "mask has 5 entries but kspace has 6 columns": write_h5(tmp_path / "f.h5", kspace=k, mask=mask[:5]),
        "no measured k-space column": write_h5(tmp_path / "g.h5", kspace=np.zeros((2, 4, 4), np.complex64)),
        "kspace is empty": write_h5(tmp_path / "h.h5", kspace=np.zeros((0, 4, 4), np.complex64)),
    }
    for message, path in cases.items():
        with pytest.raises(InputError) as err:
            KSpaceFile(path)
        assert str(err.value).startswith(f"{path}: ") and message in str(err.value), str(err.value)

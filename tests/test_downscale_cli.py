"""python -m science.downscale: predict and fit end to end on tiny data (NetCDF and Zarr, lazy chunks), the
one-line errors, atomic outputs, and --help without heavy imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr

from science.downscale.cli import main
from science.downscale.fields import coarsen


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test of this file on one torch thread."""


def fine_dataset(times: int = 3, h: int = 32, w: int = 32) -> xr.Dataset:
    rng = np.random.default_rng(2)
    orog = rng.uniform(0, 1500, (h, w)).astype(np.float32)
    tas = (285 + rng.normal(0, 2, (times, h, w))).astype(np.float32)
    tas[:, :4, :4] = np.nan
    return xr.Dataset({"tas": (("time", "lat", "lon"), tas, {"units": "K", "long_name": "air temperature"}),
                       "orog": (("lat", "lon"), orog, {"units": "m"})},
                      coords={"time": np.arange(times), "lat": 40 + 0.5 * np.arange(h), "lon": 0.5 * np.arange(w)},
                      attrs={"title": "cli test"})


@pytest.fixture
def files(tmp_path):
    fine = fine_dataset()
    coarse = coarsen(fine[["tas"]], 4)
    coarse.to_netcdf(tmp_path / "coarse.nc", engine="h5netcdf")
    coarse.to_zarr(tmp_path / "coarse.zarr")
    fine[["orog"]].to_netcdf(tmp_path / "orog.nc", engine="h5netcdf")
    fine.to_netcdf(tmp_path / "fine.nc", engine="h5netcdf")
    return tmp_path


def test_predict_netcdf_and_lazy_zarr_agree(files, tiny_downscale_weights, capsys):
    base = ["--model", str(tiny_downscale_weights), "--static", str(files / "orog.nc"), "--members", "3",
            "--device", "cpu", "--quiet"]
    assert main(["predict", str(files / "coarse.nc"), "-o", str(files / "out.nc"), *base]) == 0
    assert main(["predict", str(files / "coarse.zarr"), "-o", str(files / "out.zarr"), *base, "--chunks", "time=1"]) == 0
    a = xr.open_dataset(files / "out.nc", engine="h5netcdf")
    b = xr.open_zarr(files / "out.zarr")
    assert a.tas.dims == ("member", "time", "lat", "lon") and a.tas.shape == (3, 3, 32, 32)
    assert a.tas.attrs["units"] == "K" and a.attrs["title"] == "cli test" and "science.downscale" in a.attrs["history"]
    np.testing.assert_allclose(a.tas.values, b.tas.values, rtol=1e-5, atol=1e-4)
    assert sorted(p.name for p in files.iterdir() if p.name.startswith(".")) == []      # no temporaries left


@pytest.mark.parametrize("args,message", [
    (["predict", "{d}/coarse.nc", "-o", "{d}/out.txt"], "must be a .nc file or a .zarr store"),
    (["predict", "{d}/nothing.nc", "-o", "{d}/out.nc"], "nothing.nc: no such file"),
    (["predict", "{d}/coarse.nc", "-o", "{d}/coarse.nc"], "would overwrite the input"),
    (["predict", "{d}/coarse.nc", "-o", "{d}/out.nc", "--members", "0"], "--members must be >= 1"),
    (["predict", "{d}/coarse.nc", "-o", "{d}/out.nc", "--chunks", "time"], "expected DIM=N"),
    (["predict", "{d}/coarse.nc", "-o", "{d}/out.nc", "--scheduler", "tcp://x:1"], "--scheduler needs --chunks"),
    (["fit", "{d}/fine.nc", "--var", "tas", "--factor", "1", "-o", "{d}/m"], "--factor must be >= 2"),
])
def test_argument_errors(files, capsys, args, message):
    assert main([a.format(d=files) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize("change,extra,message", [
    (lambda c: c.rename(tas="pr"), [], "has no variable 'tas'"),
    (lambda c: c.assign(tas=c.tas * np.nan), [], "NaN everywhere"),
    (lambda c: c, ["--factor", "8"], "trained for factor 4, not 8"),
    (lambda c: c, ["--static", "{d}/small.nc"], "does not cover the fine grid"),
])
def test_predict_input_errors_leave_nothing(files, tiny_downscale_weights, capsys, change, extra, message):
    change(xr.open_dataset(files / "coarse.nc", engine="h5netcdf").load()).to_netcdf(files / "bad.nc", engine="h5netcdf")
    fine_dataset()[["orog"]].isel(lat=slice(10, None)).to_netcdf(files / "small.nc", engine="h5netcdf")
    args = ["predict", str(files / "bad.nc"), "-o", str(files / "out.nc"), "--model", str(tiny_downscale_weights),
            "--static", str(files / "orog.nc"), "--device", "cpu", "--quiet", *[e.format(d=files) for e in extra]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (files / "out.nc").exists()


def test_fit_then_predict(files, capsys):
    out = files / "model"
    assert main(["fit", str(files / "fine.nc"), "--var", "tas", "--factor", "4", "-o", str(out),
                 "--static", "orog", "--max-minutes", "0.03", "--device", "cpu", "--quiet"]) == 0
    assert (out / "regression" / "model.json").is_file() and (out / "diffusion" / "model.json").is_file()
    assert main(["predict", str(files / "coarse.nc"), "-o", str(files / "out.nc"), "--model", str(out),
                 "--static", str(files / "orog.nc"), "--members", "2", "--device", "cpu", "--quiet"]) == 0
    assert xr.open_dataset(files / "out.nc", engine="h5netcdf").tas.shape == (2, 3, 32, 32)
    assert main(["fit", str(files / "fine.nc"), "--var", "pr", "--factor", "4", "-o", str(files / "m2"),
                 "--device", "cpu", "--quiet"]) == 2
    assert "no variable 'pr'" in capsys.readouterr().err and not (files / "m2").exists()
    assert main(["fit", str(files / "fine.nc"), "--var", "tas", "--factor", "3", "-o", str(files / "m3"),
                 "--device", "cpu", "--quiet"]) == 2
    assert "does not divide by the factor 3" in capsys.readouterr().err


def test_help_is_fast():
    for _ in range(2):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "science.downscale", "predict", "--help"], capture_output=True,
                              text=True)
        seconds = time.perf_counter() - start
        if seconds < 2:
            break
    assert proc.returncode == 0 and "--members" in proc.stdout and seconds < 2


def test_default_static_without_pvlib_is_a_one_line_error(files, tiny_downscale_weights, monkeypatch, capsys):
    from science.downscale import fields

    meta = json.loads((tiny_downscale_weights / "regression" / "model.json").read_text())
    model_dir = files / "linke_like"
    shutil.copytree(tiny_downscale_weights, model_dir)
    meta["extra"]["field"] = "linke_turbidity"                    # a model whose statics come with its field
    (model_dir / "regression" / "model.json").write_text(json.dumps(meta))

    def absent(*args, **kwargs):
        raise fields.FieldUnavailable("pvlib is not installed: pip install pvlib")

    monkeypatch.setattr(fields, "load", absent)
    assert main(["predict", str(files / "coarse.nc"), "-o", str(files / "out.nc"), "--model", str(model_dir),
                 "--device", "cpu", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pvlib is not installed" in err and "--static" in err
    assert not (files / "out.nc").exists()

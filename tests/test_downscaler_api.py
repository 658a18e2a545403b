"""science.downscale.Downscaler on tiny random-weight models: xarray in and out (dimensions, fine coordinates,
attributes and history), NaN blocks, members that do not depend on the ensemble size, errors. The models are
untrained: these tests check the plumbing, never the quality."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from science.downscale.downscaler import Downscaler, fine_coordinate
from shared.files import InputError

@pytest.fixture(scope="module")
def model_dir(tiny_downscale_weights):
    return tiny_downscale_weights


@pytest.fixture(scope="module")
def downscaler(model_dir) -> Downscaler:
    torch.set_num_threads(1)
    return Downscaler.from_pretrained(model_dir, device="cpu")


def coarse_and_static(times: int = 2, h: int = 6, w: int = 8):
    rng = np.random.default_rng(0)
    lat, lon = 40.0 + 2.0 * np.arange(h), 250.0 + 2.0 * np.arange(w)
    tas = (280 + 5 * rng.normal(size=(times, h, w))).astype(np.float32)
    tas[:, 0, 0] = np.nan                                            # a block that is NaN (land, say)
    coarse = xr.Dataset({"tas": (("time", "lat", "lon"), tas,
                                 {"units": "K", "standard_name": "air_temperature", "long_name": "Air temperature"})},
                        coords={"time": np.arange(times), "lat": ("lat", lat, {"units": "degrees_north"}),
                                "lon": ("lon", lon, {"units": "degrees_east"})},
                        attrs={"title": "test", "history": "made by a test"})
    flat, flon = fine_coordinate(lat, 4), fine_coordinate(lon, 4)
    big_lat = np.concatenate([flat[0] - 0.5 * np.arange(4, 0, -1), flat, flat[-1] + 0.5 * np.arange(1, 5)])
    orog = xr.Dataset({"orog": (("lat", "lon"), rng.uniform(0, 2000, (len(big_lat), len(flon))))},
                      coords={"lat": big_lat, "lon": flon})            # a larger grid than needed: matched by coordinate
    return coarse, orog


def test_fine_coordinate():
    np.testing.assert_allclose(fine_coordinate(np.array([0.0, 4.0]), 4), [-1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
    with pytest.raises(InputError, match="not regularly spaced"):
        fine_coordinate(np.array([0.0, 1.0, 3.0]), 2)


def test_predict_returns_the_fine_grid_with_attributes(downscaler):
    coarse, orog = coarse_and_static()
    out = downscaler.predict(coarse, static=orog, members=3)
    da = out["tas"]
    assert da.dims == ("member", "time", "lat", "lon") and da.shape == (3, 2, 24, 32)
    np.testing.assert_allclose(da.lat, fine_coordinate(coarse.lat.values, 4))
    assert da.attrs == coarse.tas.attrs and da.lat.attrs == {"units": "degrees_north"}
    assert out.attrs["title"] == "test"
    lines = out.attrs["history"].splitlines()
    assert lines[0] == "made by a test" and "science.downscale: tas downscaled x4 (diffusion, 3 members" in lines[1]
    assert np.isnan(da.values[..., :4, :4]).all() and np.isfinite(da.values[..., 4:, :]).all()
    assert float(da.std("member").mean()) > 0                            # members differ
    assert downscaler.last_run.network_evaluations == 2 * (1 + 4)       # per field: the mean + 4 steps


def test_members_do_not_depend_on_the_ensemble_size(downscaler):
    coarse, orog = coarse_and_static(times=1)
    two = downscaler.predict(coarse, static=orog, members=2, seed=5)["tas"]
    four = downscaler.predict(coarse, static=orog, members=4, seed=5)["tas"]
    np.testing.assert_allclose(two.values, four.values[:2], rtol=1e-5, atol=1e-4)


def test_regression_only_and_tiling(downscaler, model_dir):
    coarse, orog = coarse_and_static(times=1)
    mean = downscaler.predict(coarse, static=orog, method="regression")["tas"]
    assert mean.sizes["member"] == 1
    tiled = Downscaler.from_pretrained(model_dir, device="cpu")
    tiled.tile, tiled.overlap = 16, 4                 # 3 x 3 tiles (GroupNorm sees each tile: values differ)
    again = tiled.predict(coarse, static=orog, method="regression")["tas"]
    assert again.shape == mean.shape and (np.isnan(again.values) == np.isnan(mean.values)).all()
    assert np.isfinite(again.values[..., 4:, :]).all()


@pytest.mark.parametrize("change,message", [
    (lambda c, s: (c.rename(tas="pr"), s), "has no variable 'tas'"),
    (lambda c, s: (c, None), "needs the static field orog"),
    (lambda c, s: (c, s.isel(lat=slice(8, None))), "does not cover the fine grid"),
    (lambda c, s: (c, s.rename(orog="height")), "has no 'orog'"),
    (lambda c, s: (c.assign(tas=c.tas * np.nan), s), "NaN everywhere"),
    (lambda c, s: (c.assign_coords(lon=c.lon.values ** 1.5), s), "not regularly spaced"),
])
def test_input_errors(downscaler, change, message):
    coarse, orog = change(*coarse_and_static(times=1))
    with pytest.raises(InputError, match=message):
        downscaler.predict(coarse, static=orog, members=2)


def test_missing_model_folder(tmp_path):
    with pytest.raises(InputError, match="regression/model.json missing"):
        Downscaler.from_pretrained(tmp_path, device="cpu")


def small_fine_dataset(times: int = 6, h: int = 32, w: int = 32) -> xr.Dataset:
    rng = np.random.default_rng(1)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    orog = 1000 * np.exp(-((yy - 16) ** 2 + (xx - 10) ** 2) / 40.0)
    tas = 290 - 0.006 * orog[None] + rng.normal(0, 0.5, (times, h, w)) + np.arange(times)[:, None, None]
    tas[:, :, -4:] = np.nan                                          # a NaN strip (sea, say)
    return xr.Dataset({"tas": (("time", "lat", "lon"), tas.astype(np.float32), {"units": "K"}),
                       "orog": (("lat", "lon"), orog.astype(np.float32), {"units": "m"})},
                      coords={"time": np.arange(times), "lat": 30 + 0.25 * np.arange(h), "lon": 0.25 * np.arange(w)})


def test_fit_save_and_reload(tmp_path):
    from science.downscale.fields import coarsen

    fine = small_fine_dataset()
    model = Downscaler.fit(fine, "tas", 4, static=["orog"], max_minutes=0.05, patch=16, batch_size=4, progress=False,
                           accelerator="cpu", workdir=str(tmp_path / "work"))
    assert model.settings["var"] == "tas" and model.settings["factor"] == 4 and model.settings["mask_channel"]
    # the residual stage is preconditioned at the scale the regression stage leaves (fitting.residual_scale)
    assert model.diffusion.process.config.sigma_data >= 1e-3 and model.diffusion.skip == 0.0
    assert len(model.diffusion.process.config.x0_variance) == 4          # Analytic-DPM's reverse variance
    model.save_pretrained(tmp_path / "model")
    again = Downscaler.from_pretrained(tmp_path / "model", device="cpu")
    coarse = coarsen(fine.isel(time=[5]), 4)
    a = model.predict(coarse, static=fine, members=2)["tas"]
    b = again.predict(coarse, static=fine, members=2)["tas"]
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-4)
    assert a.shape == (2, 1, 32, 32) and np.isnan(a.values[..., -4:]).all() and np.isfinite(a.values[..., :-4]).all()


@pytest.mark.parametrize("args,message", [
    (dict(var="pr", factor=4), "no variable 'pr'"),
    (dict(var="tas", factor=5), "does not divide by the factor 5"),
    (dict(var="tas", factor=4, static=["height"]), "no static variable 'height'"),
    (dict(var="tas", factor=4, static=["tas"]), "not the variable's grid"),
])
def test_fit_errors(args, message):
    with pytest.raises(InputError, match=message):
        Downscaler.fit(small_fine_dataset(), max_minutes=0.01, **args)


def test_dask_input_stays_lazy_and_matches_the_eager_run(downscaler):
    coarse, orog = coarse_and_static(times=4)
    eager = downscaler.predict(coarse, static=orog, members=2, seed=3)["tas"]
    lazy = downscaler.predict(coarse.chunk({"time": 1}), static=orog, members=2, seed=3)["tas"]
    assert lazy.chunks is not None and lazy.dims == eager.dims          # nothing computed yet
    assert lazy.data.numblocks[1] == 4                                   # one block per time chunk
    np.testing.assert_allclose(lazy.compute().values, eager.values, rtol=1e-5, atol=1e-4)


def test_local_cluster_gives_the_in_process_numbers(downscaler):
    from distributed import Client, LocalCluster

    coarse, orog = coarse_and_static(times=2)
    eager = downscaler.predict(coarse, static=orog, members=2, seed=1)["tas"]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        lazy = downscaler.predict(coarse.chunk({"time": 1}), static=orog, members=2, seed=1)["tas"]
        values = client.compute(lazy.data).result()
        assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_allclose(values, eager.values, rtol=1e-5, atol=1e-4)

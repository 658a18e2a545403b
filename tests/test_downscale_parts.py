"""Downscaling parts (issue 15): the real gridded fields, block-mean coarsening, the split, and the scores.

Fast: the scores against closed forms, their definitions and a reference package (properscoring), the coarsening on small hand-checked arrays, and every registry field loaded (the global
Linke turbidity grid through a small region, plus one full load that must take seconds).
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import xarray as xr

from science.downscale import fields, metrics


# ----------------------------------------------------------------------------- CRPS
def _gaussian_crps(y, mu, sigma):
    """``sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi)]``, ``z = (y - mu) / sigma``."""
    z = (np.asarray(y) - mu) / sigma
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    pdf = np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    return sigma * (z * (2 * cdf - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def test_crps_of_a_large_gaussian_ensemble_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu, sigma = 1.5, 2.0
    truth = np.linspace(-4, 7, 23)
    members = rng.normal(mu, sigma, size=(4000, truth.size))
    exact = _gaussian_crps(truth, mu, sigma)
    for fair in (True, False):
        got = metrics.crps_ensemble(members, truth, fair=fair, average=False)
        np.testing.assert_allclose(got, exact, atol=0.06 * sigma)
        assert abs(got.mean() - exact.mean()) < 0.02 * sigma
    assert metrics.crps_ensemble(members, truth) == pytest.approx(
        metrics.crps_ensemble(members, truth, average=False).mean())


def test_crps_matches_properscoring_and_the_pair_sum():
    import properscoring

    rng = np.random.default_rng(1)
    members = rng.normal(size=(9, 6, 7)) * rng.uniform(0.5, 2, size=(6, 7))
    truth = rng.normal(size=(6, 7))
    members[:3, 0, 0] = truth[0, 0]                            # ties with the truth
    plain = metrics.crps_ensemble(members, truth, fair=False, average=False)
    np.testing.assert_allclose(plain, properscoring.crps_ensemble(truth, np.moveaxis(members, 0, -1)), atol=1e-12)
    m = members.shape[0]
    fair = metrics.crps_ensemble(members, truth, fair=True, average=False)
    pair = np.abs(members[:, None] - members[None]).sum(axis=(0, 1))
    np.testing.assert_allclose(fair, np.abs(members - truth).mean(0) - pair / (2 * m * (m - 1)), atol=1e-12)
    # member axis elsewhere
    np.testing.assert_allclose(metrics.crps_ensemble(np.moveaxis(members, 0, -1), truth, axis=-1, average=False),
                               fair, atol=1e-12)



def test_crps_sorted_form_matches_the_double_sum_definition():
    """The O(M log M) sorted computation equals the definition's double sum, fair and plain, with ties."""
    rng = np.random.default_rng(8)
    members, truth = rng.normal(size=(6, 5, 4)), rng.normal(size=(5, 4))
    members[:2, 0, 0] = truth[0, 0]
    m = members.shape[0]
    skill = np.abs(members - truth).mean(axis=0)
    pairs = np.abs(members[:, None] - members[None]).sum(axis=(0, 1))
    np.testing.assert_allclose(metrics.crps_ensemble(members, truth, fair=True, average=False),
                               skill - pairs / (2 * m * (m - 1)), atol=1e-12)
    np.testing.assert_allclose(metrics.crps_ensemble(members, truth, fair=False, average=False),
                               skill - pairs / (2 * m * m), atol=1e-12)


def test_nan_truth_is_skipped_and_nan_members_are_refused():
    rng = np.random.default_rng(2)
    members, truth = rng.normal(size=(5, 40)), rng.normal(size=40)
    masked = truth.copy()
    masked[:15] = np.nan
    per_point = metrics.crps_ensemble(members, masked, average=False)
    assert np.isnan(per_point[:15]).all() and np.isfinite(per_point[15:]).all()
    assert metrics.crps_ensemble(members, masked) == pytest.approx(metrics.crps_ensemble(members[:, 15:], truth[15:]))
    assert metrics.rmse_of_mean(members, masked) == pytest.approx(metrics.rmse_of_mean(members[:, 15:], truth[15:]))
    assert metrics.rank_histogram(members, masked).sum() == 25
    members[0, 20] = np.nan
    with pytest.raises(ValueError, match="members are NaN where the truth is finite"):
        metrics.crps_ensemble(members, masked)
    with pytest.raises(ValueError, match="no finite value"):
        metrics.crps_ensemble(members, np.full(40, np.nan))
    with pytest.raises(ValueError, match="at least 2 members"):
        metrics.crps_ensemble(members[:1], truth)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.crps_ensemble(members, truth[:10])


# ----------------------------------------------------------------------------- spread-skill, ranks
def _calibrated(rng, m=10, n=20000, scale=1.0):
    """Truth and ``m`` members exchangeable given a random centre; ``scale`` < 1 shrinks the members."""
    centre = rng.normal(size=n) * 3
    truth = centre + rng.normal(size=n)
    members = centre + scale * rng.normal(size=(m, n))
    return members, truth


def test_spread_skill_is_one_when_calibrated_and_below_one_when_under_dispersed():
    rng = np.random.default_rng(3)
    members, truth = _calibrated(rng, m=5)                    # small M: the (M+1)/M correction matters
    assert metrics.spread_skill(members, truth) == pytest.approx(1.0, abs=0.03)
    m = members.shape[0]
    rmse = np.sqrt(np.mean((members.mean(0) - truth) ** 2))
    assert metrics.rmse_of_mean(members, truth) == pytest.approx(rmse)
    spread = np.sqrt((m + 1) / m * members.var(axis=0, ddof=1).mean())
    assert metrics.spread_skill(members, truth) == pytest.approx(spread / rmse)
    narrow, truth = _calibrated(rng, m=5, scale=0.5)
    assert metrics.spread_skill(narrow, truth) < 0.7


def test_rank_histogram_is_flat_when_calibrated_and_u_shaped_when_under_dispersed():
    rng = np.random.default_rng(4)
    members, truth = _calibrated(rng, m=9)
    counts = metrics.rank_histogram(members, truth)
    assert counts.shape == (10,) and counts.sum() == truth.size
    expected = truth.size / counts.size
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 27.9                                         # chi-square, 9 dof, p = 0.001
    narrow, truth = _calibrated(rng, m=9, scale=0.4)
    counts = metrics.rank_histogram(narrow, truth)
    assert counts[0] > 2 * expected and counts[-1] > 2 * expected and counts[4] < expected


def test_rank_histogram_breaks_ties_at_random_with_a_seed():
    members, truth = np.zeros((3, 4000)), np.zeros(4000)      # every member ties the truth
    counts = metrics.rank_histogram(members, truth, seed=7)
    assert np.all(np.abs(counts - 1000) < 120)
    np.testing.assert_array_equal(counts, metrics.rank_histogram(members, truth, seed=7))


# ----------------------------------------------------------------------------- power spectrum
@pytest.mark.parametrize("window", ["hann", None])
def test_power_spectrum_of_a_sinusoid_peaks_at_its_wavenumber(window):
    h, w, cycles = 48, 80, 6
    x = np.arange(w)
    field = 280.0 + np.sin(2 * np.pi * cycles * x / w)[None, :] * np.ones((h, 1))
    k, power = metrics.radial_power_spectrum(field, window=window)
    dk = k[0]
    assert k.shape == power.shape == (24,) and dk == pytest.approx(1 / 48)
    assert abs(k[np.argmax(power)] - cycles / w) <= dk / 2
    k2, _ = metrics.radial_power_spectrum(field, window=window, spacing=0.25)
    np.testing.assert_allclose(k2, k / 0.25)


@pytest.mark.parametrize("window", ["hann", None])
def test_power_spectrum_of_white_noise_is_flat_at_its_variance(window):
    rng = np.random.default_rng(5)
    noise = 2.0 * rng.standard_normal((64, 64, 64))
    k, power = metrics.radial_power_spectrum(noise, window=window)
    assert power.shape == (64, 32)
    mean = power.mean(axis=0) / 4.0
    assert abs(mean.mean() - 1) < 0.03
    assert np.all(np.abs(mean[1:] - 1) < 0.15)               # the first bin: few modes (and -6 % with Hann)
    slope = np.polyfit(np.log(k[1:]), np.log(mean[1:]), 1)[0]
    assert abs(slope) < 0.05


def test_power_spectrum_refuses_nan_and_tiny_fields():
    field = np.ones((16, 16))
    field[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metrics.radial_power_spectrum(field)
    with pytest.raises(ValueError, match="too small"):
        metrics.radial_power_spectrum(np.ones((3, 16)))
    with pytest.raises(ValueError, match="window"):
        metrics.radial_power_spectrum(np.ones((8, 8)), window="hamming")


# ----------------------------------------------------------------------------- coarsen
def _grid(values, lat_name="latitude", lon_name="longitude", time=None):
    values = np.asarray(values, dtype=np.float64)
    h, w = values.shape[-2:]
    dims = ((("time",) if values.ndim == 3 else ()) + (lat_name, lon_name))
    coords = {lat_name: (lat_name, np.arange(h, dtype=float), {"units": "degrees_north"}),
              lon_name: (lon_name, 10 + np.arange(w, dtype=float), {"units": "degrees_east"})}
    if values.ndim == 3:
        coords["time"] = np.arange(values.shape[0])
    return xr.Dataset({"t": (dims, values, {"units": "K", "standard_name": "air_temperature"})},
                      coords=coords, attrs={"title": "test"})


def test_coarsen_is_the_block_mean_and_trims():
    values = np.arange(5 * 7, dtype=float).reshape(5, 7)
    out = fields.coarsen(_grid(values), 2)
    assert dict(out.sizes) == {"latitude": 2, "longitude": 3}  # 5 x 7 -> trim to 4 x 6
    by_hand = np.array([[values[2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(out["t"].values, by_hand)
    np.testing.assert_allclose(out["latitude"].values, [0.5, 2.5])
    np.testing.assert_allclose(out["longitude"].values, [10.5, 12.5, 14.5])
    assert out["t"].attrs == {"units": "K", "standard_name": "air_temperature"}
    assert out.attrs == {"title": "test"} and out["latitude"].attrs["units"] == "degrees_north"


def test_coarsen_skips_nan_cells_and_keeps_all_nan_blocks_nan():
    values = np.arange(16, dtype=float).reshape(4, 4)
    values[0, 0] = np.nan                                       # block (0, 0): mean of the 3 others
    values[2:, 2:] = np.nan                                     # block (1, 1): all NaN
    out = fields.coarsen(_grid(values), 2)["t"].values
    assert out[0, 0] == pytest.approx((1 + 4 + 5) / 3)
    assert np.isnan(out[1, 1]) and np.isfinite(out[0, 1]) and np.isfinite(out[1, 0])


def test_coarsen_finds_other_dimension_names_and_keeps_time():
    ds = _grid(np.ones((3, 6, 6)), "grid_latitude", "grid_longitude")
    out = fields.coarsen(ds, 3)
    assert dict(out.sizes) == {"time": 3, "grid_latitude": 2, "grid_longitude": 2}
    assert fields.spatial_dims(_grid(np.ones((4, 4)), "lat", "lon")) == ("lat", "lon")
    assert fields.spatial_dims(_grid(np.ones((4, 4)), "Latitude", "LON")) == ("Latitude", "LON")


def test_coarsen_errors_have_their_messages():
    with pytest.raises(ValueError, match=r"smaller than the coarsening factor 4"):
        fields.coarsen(_grid(np.ones((3, 8))), 4)
    with pytest.raises(ValueError, match="positive integer"):
        fields.coarsen(_grid(np.ones((4, 4))), 0)
    with pytest.raises(ValueError, match="no latitude dimension"):
        fields.coarsen(xr.Dataset({"t": (("y", "x"), np.ones((4, 4)))}), 2)
    with pytest.raises(ValueError, match="no dimension 'depth'"):
        fields.coarsen(_grid(np.ones((4, 4))), 2, dims=["depth"])


# ----------------------------------------------------------------------------- split
def test_split_by_time_and_by_region_are_disjoint_and_cover():
    ds = _grid(np.random.default_rng(6).normal(size=(20, 4, 30)))
    ds["static"] = (("latitude", "longitude"), np.ones((4, 30)))
    train, val = fields.split(ds, "time", 0.2)
    assert val.sizes["time"] == 4 and train.sizes["time"] == 16
    assert set(train.time.values).isdisjoint(val.time.values)
    assert np.array_equal(np.concatenate([train.time.values, val.time.values]), ds.time.values)
    train, val = fields.split(ds, "region", 0.2, factor=4)
    assert val.sizes["longitude"] == 8 and train.sizes["longitude"] == 22    # round(6 / 4) = 2 blocks of 4
    assert train.longitude.values.max() < val.longitude.values.min()         # a contiguous eastern band
    xr.testing.assert_identical(xr.concat([train, val], "longitude", data_vars="all"), ds)
    assert train.sizes["time"] == val.sizes["time"] == 20
    with pytest.raises(ValueError, match="fraction must lie in"):
        fields.split(ds, "time", 1.0)
    with pytest.raises(ValueError, match="choose 'time' or 'region'"):
        fields.split(ds, "pixels")
    with pytest.raises(ValueError, match="too few"):
        fields.split(ds.isel(time=[0]), "time", 0.5)


# ----------------------------------------------------------------------------- registry
_SMALL = {"linke_turbidity": (35.0, 47.0, 5.0, 20.0)}          # the Alps and the Adriatic: 144 x 180 cells


def _load(name, **kw):
    try:
        return fields.load(name, **kw)
    except fields.FieldUnavailable as err:
        pytest.skip(f"{name}: {err}")


@pytest.mark.parametrize("name", list(fields.FIELDS))
def test_every_field_loads_with_finite_values_dims_and_units(name):
    info = fields.FIELDS[name]
    ds = _load(name, region=_SMALL.get(name))
    assert tuple(ds.data_vars) == info.variables
    target = ds[info.variables[0]]
    assert target.dims == info.dims
    if name not in _SMALL:
        assert target.shape == info.shape
    for variable, units in zip(info.variables, info.units):
        assert ds[variable].attrs["units"] == units
        assert np.isfinite(ds[variable].values).mean() > 0.5, f"{name}.{variable}: mostly NaN"
    lat, lon = fields.spatial_dims(ds)
    assert (np.diff(ds[lat].values) > 0).all() and (np.diff(ds[lon].values) > 0).all()
    assert ds[lat].attrs["units"] == "degrees_north" and ds[lon].attrs["units"] == "degrees_east"
    tdim = fields.time_dim(ds)
    assert tdim == info.dims[0] and (np.diff(ds[tdim].values.astype(np.int64)) > 0).all()
    coarse = fields.coarsen(ds, 2)
    assert coarse[info.variables[0]].attrs["units"] == info.units[0]
    assert info.source and info.licence and info.package


def test_iris_fields_facts():
    a1b, e1 = _load("air_temperature_a1b"), _load("air_temperature_e1")
    assert str(a1b.time.values[0])[:10] == "1860-06-01" and str(a1b.time.values[-1])[:10] == "2099-06-01"
    assert a1b["air_temperature"].attrs["standard_name"] == "air_temperature"
    assert float(a1b["height"]) == 1.5
    assert 250 < float(a1b["air_temperature"].min()) and float(a1b["air_temperature"].max()) < 310
    # one historical run up to 1999, two scenarios from 2000
    xr.testing.assert_equal(a1b["air_temperature"][:140], e1["air_temperature"][:140])
    assert not np.array_equal(a1b["air_temperature"][140].values, e1["air_temperature"][140].values)
    sst = _load("ostia_sst")
    land = sst["surface_temperature"].isnull()
    assert int(land.all("time").sum()) == int(land.any("time").sum()) == 2055
    assert str(sst.time.values[0])[:7] == "2006-04" and str(sst.time.values[-1])[:7] == "2010-09"


def test_linke_turbidity_follows_pvlib_scaling_and_orientation():
    ds = _load("linke_turbidity", region=(27.5, 28.5, 86.5, 87.5), variables=["altitude", "linke_turbidity"])
    assert list(ds.data_vars) == ["altitude", "linke_turbidity"]
    assert float(ds["altitude"].max()) > 5000                  # Everest's 5' cells (pvlib: 5878 m at 27.99 N 86.93 E)
    sea = _load("linke_turbidity", region=(-1, 1, -151, -149))  # central Pacific: no altitude data
    assert float(sea["altitude_missing"].min()) == 1 and float(abs(sea["altitude"]).max()) == 0
    # pvlib's own lookups (when pvlib imports here): T_L(Jan, Jul) = 3.0, 4.1 at 23 N 10 E, altitude of Denver
    sahara = _load("linke_turbidity", region=(22.99, 23.07, 9.99, 10.07))
    np.testing.assert_allclose(sahara["linke_turbidity"].values[[0, 6], 0, 0], [3.0, 4.1])
    denver = _load("linke_turbidity", region=(39.70, 39.78, -105.03, -104.95))
    assert float(denver["altitude"].values[0, 0]) == pytest.approx(1622.0)
    assert float(sahara["linke_turbidity"].min()) >= 0.65 and float(sahara["linke_turbidity"].max()) <= 7.65


def test_region_crop_wraps_the_date_line_and_full_load_is_fast():
    across = _load("linke_turbidity", region=(-2, 2, 179, -179))
    west = _load("linke_turbidity", region=(-2, 2, 179, 180))
    east = _load("linke_turbidity", region=(-2, 2, -180, -179))
    assert across.sizes["longitude"] == 24
    np.testing.assert_array_equal(across["linke_turbidity"].values,
                                  np.concatenate([west["linke_turbidity"].values, east["linke_turbidity"].values], -1))
    np.testing.assert_allclose(np.diff(across.longitude.values), 1 / 12)
    start = time.perf_counter()
    full = _load("linke_turbidity", variables="altitude")
    assert full["altitude"].shape == (2160, 4320) and time.perf_counter() - start < 10
    sst = _load("ostia_sst", region=(-5, 5, -10, 10))
    assert sst.longitude.values[0] == pytest.approx(-10) and (np.diff(sst.longitude.values) > 0).all()


def test_load_errors_have_their_messages():
    with pytest.raises(KeyError, match="unknown field 'nope'"):
        fields.load("nope")
    with pytest.raises(ValueError, match="has no variable 'tas'; it has air_temperature"):
        fields.load("air_temperature_a1b", variables=["tas"])
    with pytest.raises(ValueError, match="lat_min < lat_max"):
        _load("ostia_sst", region=(5, -5, 0, 10))
    with pytest.raises(ValueError, match="holds no grid cell"):
        _load("air_temperature_a1b", region=(-40, -30, 0, 10))
    assert fields.LEFT_OUT and all(reason for reason in fields.LEFT_OUT.values())


def test_a_missing_package_names_its_install_command(monkeypatch):
    real = fields.importlib.util.find_spec
    monkeypatch.setattr(fields.importlib.util, "find_spec", lambda name: None if name == "pvlib" else real(name))
    with pytest.raises(fields.FieldUnavailable, match=r"pvlib is not installed: .*pip install pvlib"):
        fields.load("linke_turbidity", region=(0, 1, 0, 1))


def test_decode_time_360_day_and_standard():
    t = fields.decode_time([-946800.0, 1118160.0], "hours since 1970-01-01 00:00:00", "360_day")
    assert [str(x)[:10] for x in t] == ["1860-06-01", "2099-06-01"]
    t = fields.decode_time([0.0, 36.0], "days since 2000-02-28", "gregorian")
    assert [str(x)[:10] for x in t] == ["2000-02-28", "2000-04-04"]
    with pytest.raises(ValueError, match="calendar 'noleap' is not supported"):
        fields.decode_time([0.0], "days since 2000-01-01", "noleap")


def test_residual_scale_is_the_rms_of_the_regression_residual():
    """``fitting.residual_scale``: the RMS of ``x0 - D(y)`` over the patches (a stand-in regression that adds 0.1)."""
    import torch

    from science.downscale.fitting import residual_scale

    g = torch.Generator().manual_seed(0)
    patches = [{"x0": torch.randn(1, 8, 8, generator=g), "y": torch.randn(1, 8, 8, generator=g)} for _ in range(32)]
    for item in patches:
        item["x0"] = item["y"] + 0.2

    class PlusTenth(torch.nn.Module):
        def forward(self, x, t, y, cond=None):
            return y + 0.1

    assert residual_scale(PlusTenth(), patches, batches=2, batch_size=8) == pytest.approx(0.1, rel=1e-3)


def test_fit_uses_the_shipped_models_networks_and_process():
    """``Downscaler.fit``'s constants are those of experiments/science/downscale_resshift.yaml (``sigma_data`` is
    measured per dataset instead)."""
    from pathlib import Path

    import yaml

    from science.downscale.fitting import BACKBONE, RESSHIFT, UNSHUFFLE

    config = Path(__file__).resolve().parents[1] / "experiments" / "science" / "downscale_resshift.yaml"
    model = yaml.safe_load(config.read_text())["model"]["init_args"]
    process = {k: v for k, v in model["process"].items() if k != "sigma_data"}
    assert process == RESSHIFT and model["unshuffle"] == UNSHUFFLE
    assert {k: v for k, v in model["backbone"].items() if k in BACKBONE} == BACKBONE

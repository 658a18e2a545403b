"""science.forecast.Forecaster's API on a tiny random-weight model: forecasts of pandas Series, DataFrames and
xarray DataArrays (shapes, indexes, coordinates, ordered quantiles), sample paths, imputation, errors and
reproducibility. The model is untrained: these tests check the plumbing, never the forecasts' quality."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from science.forecast import Forecaster, series
from science.forecast.metrics import LEVELS
from shared.files import InputError

QUANTILE_COLUMNS = [f"q{q:g}" for q in LEVELS]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test of this file on one torch thread (conftest's one_torch_thread)."""


@pytest.fixture(scope="module")
def forecaster(tiny_forecast_weights) -> Forecaster:
    """The Forecaster of a tiny random-weight model (plumbing tests only, never shipped)."""
    return Forecaster.from_pretrained(tiny_forecast_weights, device="cpu")


@pytest.fixture(scope="module")
def co2() -> pd.Series:
    return series.load("co2").tail(60)


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_series_forecast(forecaster, co2):
    q = forecaster.predict(co2, horizon=6, samples=16, generator=g())
    assert list(q.columns) == ["mean", *QUANTILE_COLUMNS]
    assert q.index.equals(pd.date_range(co2.index[-1], periods=7, freq="MS")[1:])
    assert np.isfinite(q.to_numpy()).all()
    assert np.all(np.diff(q[QUANTILE_COLUMNS].to_numpy(), axis=1) >= 0)
    assert forecaster.last_run.network_evaluations == 4 * (1 + 3) and forecaster.last_run.seconds > 0   # + backtests


def test_frame_forecast(forecaster, co2):
    frame = pd.DataFrame({"a": co2, "b": 2 * co2})
    q = forecaster.predict(frame, horizon=3, samples=8, generator=g())
    assert isinstance(q.columns, pd.MultiIndex) and q.columns.names == ["series", "stat"]
    assert list(q.columns.get_level_values("series").unique()) == ["a", "b"]
    assert list(q["a"].columns) == ["mean", *QUANTILE_COLUMNS] and len(q) == 3
    assert (q["b"]["mean"] > q["a"]["mean"]).all()          # twice the series, forecast in its own units


def test_xarray_forecast_with_extra_dimension(forecaster, co2):
    xr = pytest.importorskip("xarray")
    values = np.stack([co2.to_numpy(), co2.to_numpy() + 5, co2.to_numpy() - 5], axis=1)
    da = xr.DataArray(values, dims=("time", "site"), coords={"time": co2.index, "site": ["x", "y", "z"]},
                      name="co2", attrs={"units": "ppm"})
    out = forecaster.predict(da, horizon=4, samples=8, generator=g())
    assert out.dims == ("quantile", "time", "site") and out.shape == (9, 4, 3)
    assert out.name == "co2" and out.attrs == {"units": "ppm"}
    assert out["quantile"].values.tolist() == list(LEVELS) and list(out["site"].values) == ["x", "y", "z"]
    assert out["mean"].dims == ("time", "site") and np.isfinite(out["mean"].values).all()
    assert pd.DatetimeIndex(out["time"].values).equals(pd.date_range("2002-01-01", periods=4, freq="MS"))
    assert np.all(np.diff(out.values, axis=0) >= 0)
    paths = forecaster.predict(da, horizon=4, samples=5, generator=g(), return_samples=True)
    assert paths.dims == ("sample", "time", "site") and paths.shape == (5, 4, 3)


def test_return_samples(forecaster, co2):
    paths = forecaster.predict(co2, horizon=5, samples=7, generator=g(), return_samples=True)
    assert paths.shape == (5, 7) and list(paths.columns) == list(range(7))
    frame = forecaster.predict(pd.DataFrame({"a": co2, "b": co2}), horizon=5, samples=7, generator=g(),
                               return_samples=True)
    assert frame.shape == (5, 14)
    f = forecaster.forecast(co2, 5, samples=7, generator=g(), keep_samples=True)
    assert f.samples.shape == (7, 5) and f.quantiles.shape == (9, 5) and f.mean.shape == (5,)


def test_impute_keeps_observed_values(forecaster, co2):
    gappy = co2.copy()
    holes = [10, 11, 30, 58]
    gappy.iloc[holes] = np.nan
    filled = forecaster.impute(gappy, samples=8, generator=g())
    assert filled.index.equals(co2.index) and not filled.isna().any()
    observed = gappy.notna()
    np.testing.assert_array_equal(filled[observed].to_numpy(), co2[observed].to_numpy())   # exactly
    assert np.isfinite(filled.iloc[holes]).all()


def test_forecast_notes_missing_values(forecaster, co2):
    gappy = co2.copy()
    gappy.iloc[-2] = np.nan
    f = forecaster.forecast(gappy, 3, samples=4, generator=g())
    assert f.notes[0] == "1 missing values of the context imputed by the model"
    assert f.notes[1].startswith("spread x") and f.notes[1].endswith("calibrated on 3 backtest horizons")
    assert np.isfinite(f.quantiles).all()


def test_too_few_observed_values(forecaster):
    history = np.full(40, np.nan)
    history[-1] = 1.0
    with pytest.raises(InputError, match="observed value"):
        forecaster.forecast(history, 3, samples=4)
    with pytest.raises(InputError, match="samples must be >= 1"):
        forecaster.forecast(np.arange(40.0), 3, samples=0)


def test_reproducible_with_the_same_seed(forecaster, co2):
    a = forecaster.predict(co2, horizon=4, samples=8, generator=g(3))
    b = forecaster.predict(co2, horizon=4, samples=8, generator=g(3))
    c = forecaster.predict(co2, horizon=4, samples=8, generator=g(4))
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def test_missing_model_folder(tmp_path):
    with pytest.raises(InputError, match="model.json missing"):
        Forecaster.from_pretrained(tmp_path, device="cpu")

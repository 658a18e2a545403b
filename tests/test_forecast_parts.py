"""science.forecast parts: the metrics on hand-computed cases, the series registry and its split by time,
and the statistical baselines (seasonal naive, ETS, ARIMA)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from science.forecast import baselines, metrics, series

LEVELS = metrics.LEVELS


# ----------------------------------------------------------------------------- metrics
def test_pinball_and_quantile_loss_by_hand():
    # y - f = (-1, 0, 1): rho_0.1 = (0.9, 0, 0.1), rho_0.9 = (0.1, 0, 0.9)
    np.testing.assert_allclose(metrics.pinball([1, 2, 3], [2, 2, 2], 0.1), [0.9, 0, 0.1])
    np.testing.assert_allclose(metrics.pinball([1, 2, 3], [2, 2, 2], 0.9), [0.1, 0, 0.9])
    assert metrics.quantile_loss([1, 2, 3], [2, 2, 2], 0.1) == pytest.approx(2.0)


def test_weighted_quantile_loss_by_hand():
    # y = (-2, 4), every quantile 0: sum rho_q = 2 (1 - q) + 4 q = 2 + 2q; sum |y| = 6
    y = np.array([-2.0, 4.0])
    expected = [(2 + 2 * q) / 3 for q in LEVELS]
    np.testing.assert_allclose(metrics.weighted_quantile_losses(y, np.zeros((9, 2))), expected)
    assert metrics.mean_weighted_quantile_loss(y, np.zeros((9, 2))) == pytest.approx(1.0)   # mean q = 0.5
    # y = (1, 2, 3), every quantile 2: sum rho_q = (1 - q) + q = 1 -> wQL_q = 2 / 6
    assert metrics.mean_weighted_quantile_loss([1, 2, 3], np.full((9, 3), 2.0)) == pytest.approx(1 / 3)


def test_weighted_quantile_loss_matches_gluonts_formula():
    """GluonTS: QL_q = 2 sum |(f - y)((y <= f) - q)|; wQL_q = sum_series QL_q / sum_series |y|."""
    rng = np.random.default_rng(0)
    y = rng.normal(5, 2, size=(3, 7))
    quantiles = np.sort(rng.normal(5, 2, size=(9, 3, 7)), axis=0)
    gluonts = [2 * np.abs((f - y) * ((y <= f) - q)).sum() / np.abs(y).sum() for q, f in zip(LEVELS, quantiles)]
    np.testing.assert_allclose(metrics.weighted_quantile_losses(y, quantiles), gluonts)
    # several series of different lengths aggregate by concatenation along time
    a, b = y[0, :4], y[1]
    qa, qb = quantiles[:, 0, :4], quantiles[:, 1]
    joint = metrics.mean_weighted_quantile_loss(np.concatenate([a, b]), np.concatenate([qa, qb], axis=1))
    by_parts = np.mean([(2 * metrics.pinball(a, fa, q).sum() + 2 * metrics.pinball(b, fb, q).sum())
                        / (np.abs(a).sum() + np.abs(b).sum()) for q, fa, fb in zip(LEVELS, qa, qb)])
    assert joint == pytest.approx(by_parts)


def test_perfect_forecast_scores_zero_and_full_coverage():
    y = np.array([3.0, -1.0, 4.0, 1.5])
    perfect = np.tile(y, (9, 1))                          # a degenerate interval on the truth
    assert metrics.mean_weighted_quantile_loss(y, perfect) == 0
    assert metrics.interval_coverage(y, perfect) == 1
    assert metrics.crps_from_samples(y, np.tile(y, (50, 1))) == 0


def test_mase_by_hand():
    history = [1, 3, 2, 4, 3, 5]                          # |x_t - x_{t-2}| = 1, 1, 1, 1
    assert metrics.seasonal_error(history, 2) == pytest.approx(1.0)
    assert metrics.mase([4, 6], [4.5, 5.5], history, season=2) == pytest.approx(0.5)
    assert metrics.seasonal_error(history, 1) == pytest.approx(1.6)   # |2|,|1|,|2|,|1|,|2|
    assert metrics.seasonal_error([1, 2], 4) == pytest.approx(1.0)    # season >= length: m = 1 (GluonTS)


def test_coverage_by_hand():
    y = [1, 2, 3, 4]
    assert metrics.coverage(y, [0, 2.5, 3, 5], [2, 3, 3, 6]) == 0.5   # in, below, on a closed bound, below
    quantiles = np.stack([np.full(4, q * 10) for q in LEVELS])          # q0.1 = 1, q0.9 = 9
    assert metrics.interval_coverage([0.5, 1, 9, 9.5], quantiles) == 0.5


def test_sample_quantiles_follow_gluonts_ranks():
    samples = np.arange(11.0)[::-1, None]                 # 11 samples: rank round(10 q) = 10 q
    np.testing.assert_allclose(metrics.sample_quantiles(samples)[:, 0], np.arange(1, 10))
    four = np.array([[0.0], [10.0], [20.0], [30.0]])      # ranks round(3 q): 0,1,1,1,2 (1.5 -> 2),2,2,2,3
    np.testing.assert_allclose(metrics.sample_quantiles(four)[:, 0], [0, 10, 10, 10, 20, 20, 20, 20, 30])


def test_metric_errors_are_one_line():
    with pytest.raises(ValueError, match="not \\(levels=9"):
        metrics.weighted_quantile_losses([1, 2], np.zeros((8, 2)))
    with pytest.raises(ValueError, match="sum to 0"):
        metrics.weighted_quantile_losses([0, 0], np.zeros((9, 2)))


# ----------------------------------------------------------------------------- series
@pytest.mark.parametrize("name", list(series.SERIES))
def test_every_series_loads_offline_regular_and_complete(name):
    info = series.SERIES[name]
    s = series.load(name)
    assert s.name == name and s.dtype == np.float64 and len(s) == info.length
    assert isinstance(s.index, pd.DatetimeIndex) and s.index.freqstr == info.frequency
    assert s.index.equals(pd.date_range(s.index[0], periods=len(s), freq=info.frequency))
    assert not s.isna().any() and np.isfinite(s.to_numpy()).all()
    assert info.season in (1, 4, 12, 52) and info.horizon >= 6 and info.source and info.licence


@pytest.mark.parametrize("name", ["co2", "macro_realgdp", "danish_lrm", "sunspots", "synthetic_trend_season"])
def test_split_is_by_time(name):
    info, s = series.SERIES[name], series.load(name)
    sp = series.split_series(name)
    h, w = info.horizon, info.windows
    assert len(sp.train) == len(s) - w * h and len(sp.windows) == w
    assert sp.train.index.max() < sp.windows[0].target.index.min()
    for i, window in enumerate(sp.windows):
        assert len(window.target) == h
        assert window.context.index.max() < window.target.index.min()
        assert len(window.context) == len(sp.train) + i * h            # rolling origin: all before it
        assert window.target.index[0] == s.index[len(window.context)]
    assert sp.windows[-1].target.index[-1] == s.index[-1]


def test_split_and_gap_errors():
    s = pd.Series(np.arange(10.0), name="short")
    with pytest.raises(ValueError, match="too short for 2 windows of horizon 4"):
        series.split(s, 4, windows=2, min_train=4)
    filled, count = series.fill_gaps(pd.Series([1.0, np.nan, 3.0, np.nan]))
    assert count == 2 and filled.tolist() == [1.0, 2.0, 3.0, 3.0]


def test_synthetic_is_seeded_and_sums_its_parts():
    parts = series.synthetic_components(48, "monthly", seed=3)
    s = series.synthetic(48, "monthly", seed=3)
    np.testing.assert_allclose(s.to_numpy(), parts.sum(axis=1).to_numpy())
    assert s.equals(series.synthetic(48, "monthly", seed=3).rename(s.name))
    assert not s.equals(series.synthetic(48, "monthly", seed=4).rename(s.name))


# ----------------------------------------------------------------------------- baselines
def _monthly(values) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2001-01", periods=len(values), freq="MS"))


def test_seasonal_naive_repeats_the_last_season():
    periodic = _monthly(np.tile([1.0, 5.0, 2.0, 7.0], 10))
    fc = baselines.seasonal_naive(periodic, horizon=6, season=4)
    np.testing.assert_array_equal(fc.quantile(0.5), [1, 5, 2, 7, 1, 5])
    np.testing.assert_array_equal(fc.quantiles, np.tile([1, 5, 2, 7, 1, 5], (9, 1)))   # no residual spread
    assert fc.index[0] == pd.Timestamp("2004-05-01")
    noisy = series.synthetic(60, "quarterly", seed=0)
    fc = baselines.seasonal_naive(noisy, horizon=8, season=4, samples=200, seed=0)
    np.testing.assert_array_equal(fc.quantile(0.5), np.tile(noisy.to_numpy()[-4:], 2))
    assert np.all(np.diff(fc.quantiles, axis=0) >= 0) and fc.samples.shape == (200, 8)
    spread = fc.quantile(0.9) - fc.quantile(0.1)
    np.testing.assert_allclose(spread[4:], np.sqrt(2) * spread[:4])        # second season: sqrt(2) wider


def test_baselines_fill_gaps_and_say_so():
    history = _monthly(np.tile([1.0, 5.0, 2.0, 7.0], 6))
    history.iloc[[3, 10]] = np.nan
    fc = baselines.seasonal_naive(history, horizon=4, season=4)
    assert np.isfinite(fc.quantiles).all() and any("2 missing values" in n for n in fc.notes)
    with pytest.raises(ValueError, match="needs more than 12 points"):
        baselines.seasonal_naive(history.iloc[:12], horizon=4, season=12)


@pytest.mark.parametrize("method", ["ets", "arima"])
def test_statsmodels_baselines_return_monotone_quantiles(method):
    history = series.synthetic(96, "monthly", seed=5, amplitude=2.0)
    fc = baselines.BASELINES[method](history, horizon=12, season=12, samples=30, seed=0)
    assert fc.quantiles.shape == (9, 12) and np.isfinite(fc.quantiles).all()
    assert np.all(np.diff(fc.quantiles, axis=0) >= 0) and np.all(fc.quantile(0.9) > fc.quantile(0.1))
    assert fc.samples.shape == (30, 12) and fc.mean.shape == (12,)
    assert fc.index.equals(pd.date_range(history.index[-1], periods=13, freq="MS")[1:])
    assert list(fc.frame().columns) == ["mean"] + [f"q{q:g}" for q in LEVELS]


def test_ets_beats_seasonal_naive_on_trend_and_season():
    """On the seeded trend + season series, over its 4 validation windows: ETS follows the trend, seasonal
    naive cannot (measured: 0.014 against 0.031)."""
    info = series.SERIES["synthetic_trend_season"]
    sp = series.split_series(info.name)
    y = np.concatenate([w.target.to_numpy() for w in sp.windows])
    scores = {}
    for name in ("seasonal_naive", "ets"):
        fcs = [baselines.BASELINES[name](w.context, info.horizon, info.season) for w in sp.windows]
        scores[name] = metrics.mean_weighted_quantile_loss(y, np.concatenate([f.quantiles for f in fcs], axis=1))
    assert scores["ets"] < 0.7 * scores["seasonal_naive"], scores

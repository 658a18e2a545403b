"""Spread calibration (science.forecast.calibration), the seasonal naive base with drift, and per-series
fine-tuning (Forecaster.fine_tune over shared.training.finetune): closed forms and plumbing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from science.forecast import Forecaster, calibration, series
from science.forecast.windows import make_window, seasonal_drift_path, seasonal_naive_path


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test of this file on one torch thread (conftest's one_torch_thread)."""


@pytest.fixture(scope="module")
def forecaster(tiny_forecast_weights) -> Forecaster:
    return Forecaster.from_pretrained(tiny_forecast_weights, device="cpu")


def test_scores_are_errors_in_half_widths():
    paths = np.array([[-1.0, 0.0], [0.0, 1.0], [1.0, 2.0]]) * np.array([1.0, 2.0])   # (S=3, H=2)
    lo, med, hi = np.quantile(paths, [0.1, 0.5, 0.9], axis=0)
    truth = np.array([3.0, np.nan])
    e = calibration.scores(truth, paths)
    assert e.shape == (1,)                                                   # the NaN point is not scored
    assert e[0] == pytest.approx(abs(3.0 - med[0]) / ((hi[0] - lo[0]) / 2))


def test_spread_factor_restores_the_coverage_of_too_narrow_paths(rng):
    sigma = 2.0                                     # truth ~ N(0, 2^2), paths ~ N(0, 1): twice too narrow
    paths = rng.normal(0, 1, (4000, 50))
    e = [calibration.scores(rng.normal(0, sigma, 50), paths) for _ in range(40)]
    s = calibration.spread_factor(e)
    assert s == pytest.approx(sigma, rel=0.1)
    wide = calibration.stretch(paths, s)
    truth = rng.normal(0, sigma, (200, 50))
    lo, hi = np.quantile(wide, [0.1, 0.9], axis=0)
    assert np.mean((truth >= lo) & (truth <= hi)) == pytest.approx(0.8, abs=0.03)


def test_spread_factor_edge_cases():
    assert calibration.spread_factor([]) == 1.0
    assert calibration.spread_factor([np.zeros(10)]) == calibration.S_MIN          # clipped
    assert calibration.spread_factor([np.full(10, 100.0)]) == calibration.S_MAX


def test_stretch_keeps_the_median_and_scales_the_rest():
    paths = np.array([[0.0, 10.0], [1.0, 11.0], [3.0, 15.0]])
    out = calibration.stretch(paths, 2.0)
    np.testing.assert_allclose(np.median(out, axis=0), np.median(paths, axis=0))
    np.testing.assert_allclose(out, [[-1.0, 9.0], [1.0, 11.0], [5.0, 19.0]])


def test_backtest_origins():
    assert calibration.backtest_origins(60, 6, 3, 24) == [54, 48, 42]
    assert calibration.backtest_origins(40, 8, 3, 24) == [32, 24]
    assert calibration.backtest_origins(20, 8, 3, 24) == []


def test_drift_path_continues_a_trend_and_a_season_exactly():
    t = np.arange(40.0)
    line = 3.0 + 0.5 * t
    np.testing.assert_allclose(seasonal_drift_path(line[:30], 10, 1), line[30:])
    wave = 0.2 * t + np.sin(2 * np.pi * t / 12)
    np.testing.assert_allclose(seasonal_drift_path(wave[:28], 12, 12), wave[28:], atol=1e-12)
    # the plain seasonal naive path misses the trend by b m ceil(k/m)
    np.testing.assert_allclose(wave[28:] - seasonal_naive_path(wave[:28], 12, 12), 0.2 * 12, atol=1e-12)


def test_window_base_choice():
    history = np.arange(50.0)
    plain = make_window(history, 4, 1, window=40)
    drift = make_window(history, 4, 1, window=40, base="seasonal_naive_drift")
    np.testing.assert_allclose(plain.y[:-4], drift.y[:-4])                 # the context is the same
    np.testing.assert_allclose(drift.unscale(drift.y[-4:]), [50.0, 51.0, 52.0, 53.0], atol=1e-4)
    with pytest.raises(ValueError, match="unknown base forecast"):
        make_window(history, 4, 1, base="mean")


def test_forecast_without_backtests_is_the_raw_paths(forecaster):
    co2 = series.load("co2").tail(60)
    raw = forecaster.forecast(co2, 4, samples=16, generator=torch.Generator().manual_seed(0), backtests=0,
                              keep_samples=True)
    cal = forecaster.forecast(co2, 4, samples=16, generator=torch.Generator().manual_seed(0), backtests=2,
                              keep_samples=True)
    assert not any("spread" in n for n in raw.notes)
    factor = float(cal.notes[-1].split()[1][1:-1])                          # "spread x1.23, calibrated on 2 ..."
    np.testing.assert_allclose(np.median(cal.samples, axis=0), np.median(raw.samples, axis=0))
    np.testing.assert_allclose(cal.samples, calibration.stretch(raw.samples, factor), rtol=2e-2, atol=1e-2)


def test_fine_tune_returns_an_adapted_copy(forecaster):
    co2 = series.load("co2").tail(120)
    before = [p.detach().clone() for p in forecaster.model.backbone.parameters()]
    losses = []
    tuned = forecaster.fine_tune(co2, 6, seconds=None, max_steps=3, batch_size=4, progress=lambda k, l: losses.append(l))
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert all(torch.equal(a, b) for a, b in zip(before, forecaster.model.backbone.parameters()))   # untouched
    assert any(not torch.equal(a, b) for a, b in zip(before, tuned.model.backbone.parameters()))
    assert tuned.base == forecaster.base and tuned.window == forecaster.window
    f = tuned.forecast(co2, 6, samples=4, generator=torch.Generator().manual_seed(0), backtests=0)
    assert np.isfinite(f.quantiles).all()

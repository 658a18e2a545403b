"""Quality smoke test of the shipped forecaster (science/forecast/weights/resshift): on the validation windows of
two real series it must beat the seasonal naive forecast's weighted quantile loss (the benchmark,
experiments/science/benchmark_forecast.py, measures every series)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from science.forecast import baselines, metrics
from science.forecast.forecaster import DEFAULT_MODEL, Forecaster
from science.forecast.series import SERIES, split_series


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    return Forecaster.from_pretrained(DEFAULT_MODEL, device="cpu")


@pytest.mark.parametrize("name", ["co2", "macro_realgdp"])
def test_shipped_forecaster_beats_seasonal_naive(shipped, name):
    info, split = SERIES[name], split_series(name)
    ys, ours, naive = [], [], []
    for i, w in enumerate(split.windows):
        ys.append(w.target.to_numpy(np.float64))
        ours.append(shipped.forecast(w.context, info.horizon, info.season, samples=100,
                                     generator=torch.Generator().manual_seed(i)).quantiles)
        naive.append(baselines.seasonal_naive(w.context, info.horizon, info.season).quantiles)
    y = np.concatenate(ys)
    wql = metrics.mean_weighted_quantile_loss(y, np.concatenate(ours, axis=1))
    assert wql < metrics.mean_weighted_quantile_loss(y, np.concatenate(naive, axis=1))

"""Scores of probabilistic forecasts, with GluonTS's definitions (``gluonts.evaluation.metrics`` and
the aggregation of ``gluonts.evaluation.Evaluator``), the figures TSDiff (Kollovieh et al. 2023) reports.

Shapes: targets ``y`` are arrays of any shape (one window ``(H,)``, several ``(N, H)``); quantile
forecasts carry the levels on the leading axis, ``(Q, *y.shape)``, row ``k`` the level-``levels[k]``
quantile. Scores that sum over series and time (the weighted quantile loss) aggregate several series
of different lengths exactly by concatenating them along time.

* pinball loss of level ``q``: ``rho_q(y, f) = max(q (y - f), (q - 1)(y - f))``;
* GluonTS's quantile loss: ``QL_q = 2 sum_t rho_q(y_t, f_{q,t})``;
* weighted quantile loss (GluonTS ``wQuantileLoss[q]`` and ``mean_wQuantileLoss``)::

      wQL_q = sum_{i,t} 2 rho_q(y_{i,t}, f_{q,i,t}) / sum_{i,t} |y_{i,t}|,     wQL = mean_q wQL_q

  over ``q`` in 0.1, 0.2, ..., 0.9; TSDiff's "CRPS" is this number with the quantiles read off the
  sample paths as GluonTS's ``SampleForecast.quantile`` does (:func:`sample_quantiles`);
* MASE (GluonTS / M4): ``mean_t |y_t - median_t| / mean_{t>m} |x_t - x_{t-m}|`` over the in-sample
  history ``x`` (season ``m``; ``m = 1`` when the history is not longer than ``m``); several series:
  the mean of their MASE;
* interval coverage: the fraction of targets with ``f_{0.1} <= y <= f_{0.9}`` (closed interval, so a
  degenerate interval on the truth covers it); 0.8 for a calibrated forecast.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

#: GluonTS Evaluator's default quantile levels (``np.linspace(0.1, 0.9, 9)``)
LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))


def _levels(levels: Sequence[float], forecast: np.ndarray, y: np.ndarray) -> np.ndarray:
    levels = np.asarray(levels, dtype=np.float64)
    if forecast.shape != (len(levels), *y.shape):
        raise ValueError(f"quantile forecast shape {forecast.shape} is not (levels={len(levels)}, *target {y.shape})")
    if np.any((levels <= 0) | (levels >= 1)):
        raise ValueError(f"quantile levels must lie in (0, 1), got {levels.tolist()}")
    return levels


def pinball(y, forecast, level: float) -> np.ndarray:
    """Elementwise ``rho_q(y, f) = max(q (y - f), (q - 1)(y - f))`` of level ``q`` (broadcasting)."""
    diff = np.asarray(y, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.maximum(level * diff, (level - 1) * diff)


def quantile_loss(y, forecast, level: float) -> float:
    """GluonTS's ``quantile_loss``: ``2 sum rho_q(y, f)``."""
    return float(2 * pinball(y, forecast, level).sum())


def weighted_quantile_losses(y, quantiles, levels: Sequence[float] = LEVELS) -> np.ndarray:
    """``wQL_q = 2 sum rho_q(y, f_q) / sum |y|`` for every level (GluonTS ``wQuantileLoss[q]``)."""
    y = np.asarray(y, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    levels = _levels(levels, quantiles, y)
    scale = np.abs(y).sum()
    if not scale > 0:
        raise ValueError("weighted quantile loss is undefined: the targets sum to 0 in absolute value")
    return np.array([2 * pinball(y, f, q).sum() / scale for q, f in zip(levels, quantiles)])


def mean_weighted_quantile_loss(y, quantiles, levels: Sequence[float] = LEVELS) -> float:
    """GluonTS's ``mean_wQuantileLoss``: the mean over levels of :func:`weighted_quantile_losses`."""
    return float(weighted_quantile_losses(y, quantiles, levels).mean())


def sample_quantiles(samples, levels: Sequence[float] = LEVELS) -> np.ndarray:
    """Quantiles ``(Q, ...)`` of sample paths ``(S, ...)`` as GluonTS's ``SampleForecast.quantile``: the
    sorted sample of rank ``round((S - 1) q)`` (numpy's round, half to even), no interpolation."""
    samples = np.sort(np.asarray(samples, dtype=np.float64), axis=0)
    ranks = [int(np.round((samples.shape[0] - 1) * q)) for q in levels]
    return samples[ranks]


def crps_from_samples(y, samples, levels: Sequence[float] = LEVELS) -> float:
    """TSDiff's CRPS: :func:`mean_weighted_quantile_loss` of the :func:`sample_quantiles` of ``samples``
    ``(S, *y.shape)`` (a 9-level quantile approximation of the CRPS, normalised by ``sum |y|``)."""
    return mean_weighted_quantile_loss(y, sample_quantiles(samples, levels), levels)


def seasonal_error(history, season: int = 1) -> float:
    """GluonTS's ``calculate_seasonal_error``: ``mean_t |x_t - x_{t-m}|`` over the history ``x`` (NaNs
    skipped), with ``m = 1`` when the history has no more than ``m`` points."""
    x = np.asarray(history, dtype=np.float64).ravel()
    m = int(season) if int(season) < len(x) else 1
    if len(x) < 2:
        raise ValueError(f"MASE needs a history of at least 2 points, got {len(x)}")
    return float(np.nanmean(np.abs(x[m:] - x[:-m])))


def mase(y, median, history, season: int = 1) -> float:
    """``mean |y - median| / seasonal_error(history, season)`` of one series (GluonTS / M4); inf when
    the history is constant at lag ``m`` and the forecast is not exact."""
    error = float(np.mean(np.abs(np.asarray(y, dtype=np.float64) - np.asarray(median, dtype=np.float64))))
    scale = seasonal_error(history, season)
    return error / scale if scale > 0 else (0.0 if error == 0 else float("inf"))


def coverage(y, lower, upper) -> float:
    """Fraction of targets with ``lower <= y <= upper``."""
    y = np.asarray(y, dtype=np.float64)
    return float(np.mean((np.asarray(lower) <= y) & (y <= np.asarray(upper))))


def interval_coverage(y, quantiles, levels: Sequence[float] = LEVELS, interval=(0.1, 0.9)) -> float:
    """:func:`coverage` of the central interval ``[f_{0.1}, f_{0.9}]`` (80 %) of a quantile forecast."""
    y = np.asarray(y, dtype=np.float64)
    quantiles = np.asarray(quantiles, dtype=np.float64)
    levels = list(_levels(levels, quantiles, y).round(6))
    try:
        low, high = levels.index(round(interval[0], 6)), levels.index(round(interval[1], 6))
    except ValueError:
        raise ValueError(f"interval {interval} needs levels {interval[0]} and {interval[1]}, got {levels}") from None
    return coverage(y, quantiles[low], quantiles[high])


def score(y, quantiles, history, season: int = 1, levels: Sequence[float] = LEVELS,
          median: Optional[np.ndarray] = None) -> dict:
    """One window's ``{"wql", "mase", "coverage80"}``; the median is the 0.5 quantile unless given."""
    quantiles = np.asarray(quantiles, dtype=np.float64)
    if median is None:
        rounded = [round(q, 6) for q in levels]
        if 0.5 not in rounded:
            raise ValueError("MASE needs the 0.5 quantile (or an explicit median)")
        median = quantiles[rounded.index(0.5)]
    return {"wql": mean_weighted_quantile_loss(y, quantiles, levels), "mase": mase(y, median, history, season),
            "coverage80": interval_coverage(y, quantiles, levels)}

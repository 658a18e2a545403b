"""Spread calibration of sample paths on the history's own last horizons (split conformal, scaled residuals).

The diffusion model's paths are too narrow on series unlike its training windows (80 % coverage 0.43 on the
benchmark's validation windows without this). Before forecasting the horizon after ``T``, the same model
forecasts the ``B`` horizons that end the history, each from the points before it (``backtest_origins``),
and scores each known point ``t`` of those backtests by its error in units of the 80 % half-width::

    e_t = |x_t - median_t| / w_t,        w_t = (q0.9_t - q0.1_t) / 2

The factor ``s = Q_0.8(e)`` (the 80th percentile of the scores, clipped to ``[S_MIN, S_MAX]``) is the one that
would have made those backtests' 80 % intervals cover 80 % of their points; the forecast's paths are stretched
about their median by it::

    x'_k = median + s (x_k - median)

so every quantile moves (``s < 1`` narrows an over-wide forecast). This is split conformal prediction with a
normalised score (Lei et al. 2018, "locally weighted" residuals) on the series itself; with few points its
guarantee is approximate and it assumes the last horizons resemble the next.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: the interval the factor calibrates and the clip of the factor
LEVEL = 0.8
S_MIN, S_MAX = 0.5, 5.0


def backtest_origins(length: int, horizon: int, backtests: int, min_history: int) -> list[int]:
    """Cut points ``n_b = length - b H`` (``b = 1..B``) whose history ``[:n_b]`` holds at least
    ``min_history`` points; the backtest forecasts ``[n_b, n_b + H)``."""
    return [length - b * horizon for b in range(1, int(backtests) + 1) if length - b * horizon >= min_history]


def scores(truth: np.ndarray, paths: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """``e_t = |x_t - median_t| / w_t`` of the finite truth points, ``paths (S, H)``, ``w`` the half-width of
    the central ``level`` interval of the paths (module docstring)."""
    lo, med, hi = np.quantile(paths, [(1 - level) / 2, 0.5, (1 + level) / 2], axis=0)
    half = np.maximum((hi - lo) / 2, 1e-12 * np.maximum(np.abs(med), 1.0))
    keep = np.isfinite(truth)
    return np.abs(truth[keep] - med[keep]) / half[keep]


def spread_factor(all_scores: Sequence[np.ndarray], level: float = LEVEL) -> float:
    """``s = clip(Q_level(e), S_MIN, S_MAX)`` over every backtest score; 1 when there is none."""
    e = np.concatenate([np.asarray(x, dtype=np.float64).ravel() for x in all_scores]) if all_scores else np.zeros(0)
    if e.size == 0:
        return 1.0
    return float(np.clip(np.quantile(e, level), S_MIN, S_MAX))


def stretch(paths: np.ndarray, factor: float) -> np.ndarray:
    """``median + s (x - median)`` per future point of ``paths (S, H)``."""
    med = np.median(paths, axis=0, keepdims=True)
    return med + float(factor) * (paths - med)

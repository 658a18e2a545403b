"""A history and its horizon as the forecasting model's window: standardised values, the base forecast, masks.

One window of length ``L = C + H`` holds ``C`` context points (the end of the history) and the ``H``
future points. The model (a residual-shift process, :class:`shared.processes.ResShiftScheduler`) moves from
the *base forecast* ``y`` to the window ``x0``; the window is standardised by the observed context::

    z_t   = (x_t - loc) / scale,      loc, scale = mean, std of the observed context points
    y_t   = z_t                               on observed context points
          = linear interpolation of z         on missing context points (nearest value at the ends)
          = z_{T + k - m ceil(k / m)}         on future point T + k (seasonal naive, season m)
            (+ b m ceil(k / m) with ``drift``: seasonal naive with drift, b = mean_t (z_t - z_{t-m}) / m)
    cond  = [observed_t, future_t]             two 0/1 channels

so the residual ``x0 - y`` is zero on the observed context and the seasonal naive error on the future; at
sampling time the observed points are held fixed by hard data consistency (:mod:`shared.data_consistency`).
Context points before the start of a short history are missing (``observed = 0``, ``y`` the nearest value).
Nothing here is learned; the same function builds training items (:mod:`.data`) and inference inputs
(:mod:`.forecaster`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: default window: ``C + H = 96`` points, at least ``MIN_CONTEXT`` of them context
WINDOW = 96
MIN_CONTEXT = 24


@dataclass(frozen=True)
class Window:
    """Arrays of one window, all ``(L,)`` float32 except ``loc`` and ``scale``."""

    y: np.ndarray             #: the base forecast (standardised)
    observed: np.ndarray      #: 1 where a context value was observed
    future: np.ndarray        #: 1 on the ``H`` future points
    target: np.ndarray        #: the standardised window (NaN where unknown)
    loc: float
    scale: float

    def cond(self) -> np.ndarray:
        """``(2, L)``: the conditioning channels ``[observed, future]``."""
        return np.stack([self.observed, self.future]).astype(np.float32)

    def unscale(self, z: np.ndarray) -> np.ndarray:
        """Standardised values back to the series' units: ``loc + scale z``."""
        return self.loc + self.scale * np.asarray(z, dtype=np.float64)


def context_length(horizon: int, window: int = WINDOW) -> int:
    """``C = max(window - H, MIN_CONTEXT)``: windows grow beyond ``window`` for long horizons."""
    return max(int(window) - int(horizon), MIN_CONTEXT)


def interpolate(z: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Missing entries linearly interpolated between observed neighbours (nearest value at the ends)."""
    idx = np.flatnonzero(observed)
    if len(idx) == 0:
        raise ValueError("the context has no observed value")
    return np.interp(np.arange(len(z)), idx, z[idx])


def seasonal_naive_path(context: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """``yhat_{T+k} = c_{T + k - m ceil(k/m)}`` for ``k = 1..H`` (``m`` falls back to 1 when the context
    is not longer than a season)."""
    m = int(season) if 1 <= int(season) < len(context) else 1
    k = np.arange(1, int(horizon) + 1)
    return context[len(context) - m + (k - 1) % m]


def seasonal_drift_path(context: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Seasonal naive with drift (Hyndman & Athanasopoulos, FPP3 5.2)::

        yhat_{T+k} = c_{T + k - m ceil(k/m)} + b m ceil(k/m),    b = mean_t (c_t - c_{t-m}) / m

    the seasonal naive value moved by the context's average slope over the lag it was taken from."""
    m = int(season) if 1 <= int(season) < len(context) else 1
    if len(context) <= m:
        return seasonal_naive_path(context, horizon, m)
    slope = float(np.mean(context[m:] - context[:-m])) / m
    lag = m * np.ceil(np.arange(1, int(horizon) + 1) / m)
    return seasonal_naive_path(context, horizon, m) + slope * lag


#: the base forecasts a model can be trained from (``extra.base`` in its ``model.json``)
BASES = {"seasonal_naive": seasonal_naive_path, "seasonal_naive_drift": seasonal_drift_path}


def make_window(history: np.ndarray, horizon: int, season: int, window: int = WINDOW,
                future: np.ndarray | None = None, base: str = "seasonal_naive") -> Window:
    """The window of the last ``C`` points of ``history`` (NaN = missing) and ``horizon`` future points
    (``future``: their true values, for training; else unknown), with the base forecast ``base`` (a key of
    :data:`BASES`). See the module docstring."""
    history = np.asarray(history, dtype=np.float64).ravel()
    h, c = int(horizon), context_length(horizon, window)
    ctx = history[-c:]
    if len(ctx) < c:                                       # a short history: missing points before its start
        ctx = np.concatenate([np.full(c - len(ctx), np.nan), ctx])
    observed = np.isfinite(ctx)
    if observed.sum() < 2:
        raise ValueError(f"the last {c} points of the history hold {int(observed.sum())} observed values; need 2")
    loc = float(ctx[observed].mean())
    scale = float(ctx[observed].std())
    scale = max(scale, 1e-6 * max(abs(loc), 1.0))
    z = (ctx - loc) / scale
    filled = interpolate(z, observed)
    first = int(np.flatnonzero(observed)[0])               # seasonal naive only from the observed span
    if base not in BASES:
        raise ValueError(f"unknown base forecast {base!r}; one of {', '.join(BASES)}")
    path = BASES[base](filled[first:], h, season)
    target = np.full(c + h, np.nan)
    target[:c] = np.where(observed, z, np.nan)
    if future is not None:
        target[c:] = (np.asarray(future, dtype=np.float64).ravel()[:h] - loc) / scale
    return Window(y=np.concatenate([filled, path]).astype(np.float32),
                  observed=np.concatenate([observed, np.zeros(h, bool)]).astype(np.float32),
                  future=np.concatenate([np.zeros(c), np.ones(h)]).astype(np.float32),
                  target=target.astype(np.float32), loc=loc, scale=scale)

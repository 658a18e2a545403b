"""The statistical forecasts researchers trust, as probabilistic baselines: seasonal naive, ETS, ARIMA.

Each takes a history (a pandas Series on a regular time index, or any 1-D array), a ``horizon``
and a ``season`` ``m``, and returns a :class:`Forecast`: quantiles at ``levels`` (default 0.1 ...
0.9), the mean, the future time index and, when ``samples > 0``, sample paths. NaNs in the
history are filled first (:func:`science.forecast.series.fill_gaps`: linear interpolation inside,
nearest value at the ends) and the forecast's ``notes`` say how many.

* :func:`seasonal_naive`: point forecast ``yhat_{T+k} = y_{T+k-m ceil(k/m)}`` (the last season
  repeated). Its spread comes from the in-sample residuals ``e_t = y_t - y_{t-m}``: with
  ``Q_e`` their empirical quantile function (numpy's linear interpolation),
  ``f_{q,k} = yhat_k + sqrt(ceil(k/m)) (Q_e(q) - Q_e(0.5))``: a seasonal random walk, whose
  variance grows with the number of seasons ahead (Hyndman & Athanasopoulos, FPP3 5.5; for
  ``m = 1`` the random walk's ``sqrt(k)``). The residuals are centred on their median, so the
  median is exactly the seasonal naive forecast (a drift is not corrected). Sample paths are a
  bootstrap of that walk: ``x_{T+k} = x_{T+k-m} + e*`` with ``e*`` drawn from the centred residuals.
* :func:`ets`: statsmodels ``ETSModel`` with additive errors, damped additive trend and additive
  season when ``m > 1`` (ETS(A,Ad,A), or ETS(A,Ad,N)), maximum likelihood. Its forecast
  distribution is Gaussian in closed form for additive errors (``get_prediction``, method
  ``exact``): each level ``q`` is a bound of ``summary_frame(alpha=2 min(q, 1 - q))`` (``pi_lower``
  below 0.5, ``pi_upper`` above), 0.5 the mean. If the fit does not converge (or is not finite),
  it falls back to an undamped trend, then to no trend; a season needs ``2m + 2`` points, else it
  is dropped. Every fallback is a note. Samples: ``ETSResults.simulate`` from the end.
* :func:`arima`: statsmodels ``ARIMA``, a tiny AIC search over ``(p, 1, q)`` in
  ``(0,1,1), (1,1,0), (1,1,1)``, with the seasonal part ``(0,1,1)_m`` when ``m > 1`` and the history
  has ``3m`` points (the airline model family), else a drift term. Quantiles of the Gaussian
  forecast distribution ``mean + sqrt(var) Phi^{-1}(q)``; samples by ``simulate`` from the end.

ETS and ARIMA fit the standardised history ``(y - mean) / std`` (better conditioned for series in
the thousands or hundredths; both models are additive, so this only rescales the forecast), and
their warnings are caught: a fit that warns of non-convergence counts as failed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from shared.files import InputError

from .metrics import LEVELS
from .series import fill_gaps
from .windows import seasonal_naive_path

Seed = Union[int, np.random.Generator, None]


@dataclass(frozen=True)
class Forecast:
    """A probabilistic forecast of ``H`` steps."""

    method: str
    levels: tuple[float, ...]
    quantiles: np.ndarray                 #: ``(Q, H)``, row ``k`` the level-``levels[k]`` quantile
    mean: np.ndarray                      #: ``(H,)``
    index: pd.Index                       #: the ``H`` future time stamps (or positions)
    samples: Optional[np.ndarray] = None  #: ``(S, H)`` sample paths, when asked for
    notes: tuple[str, ...] = ()           #: gaps filled, fallbacks taken

    def quantile(self, level: float) -> np.ndarray:
        """The forecast quantile of ``level`` (one of :attr:`levels`)."""
        rounded = [round(q, 6) for q in self.levels]
        if round(level, 6) not in rounded:
            raise KeyError(f"level {level} was not forecast; levels are {list(self.levels)}")
        return self.quantiles[rounded.index(round(level, 6))]

    def frame(self) -> pd.DataFrame:
        """Columns ``mean``, ``q0.1`` ... ``q0.9``, one row per future time stamp."""
        columns = {"mean": self.mean, **{f"q{q:g}": row for q, row in zip(self.levels, self.quantiles)}}
        return pd.DataFrame(columns, index=self.index)


def numeric_series(history) -> pd.Series:
    """``history`` (a pandas Series or any 1-D array) as a float Series, index kept; :class:`InputError`
    (a ``ValueError``) naming it when a value is not numeric."""
    series = history if isinstance(history, pd.Series) else pd.Series(np.asarray(history).ravel())
    try:
        return series.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(f"history {series.name!r} has non-numeric values") from None


def _history(history, horizon: int) -> tuple[np.ndarray, pd.Index, list[str]]:
    """``(values, future index, notes)`` of a history: numeric, 1-D, gaps filled."""
    if int(horizon) < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    series, filled = fill_gaps(numeric_series(history))
    notes = [f"{filled} missing values of the history filled by interpolation"] if filled else []
    return series.to_numpy(), future_index(series.index, int(horizon)), notes


def future_index(index: pd.Index, horizon: int) -> pd.Index:
    """The ``horizon`` time stamps after ``index``: its frequency for dates and periods, its constant step
    for numbers (years 1990, 1991, ... go on as 2021, 2022, ...); positions when it has neither."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        freq = index.freq or pd.infer_freq(index)
        if freq is not None:
            return pd.date_range(index[-1], periods=horizon + 1, freq=freq, name=index.name)[1:]
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=horizon, freq=index.freq, name=index.name)
    if pd.api.types.is_numeric_dtype(index) and len(index) >= 2:
        values = index.to_numpy()
        steps = np.diff(values)
        if np.allclose(steps, steps[0]) and steps[0] > 0:
            return pd.Index(values[-1] + steps[0] * np.arange(1, horizon + 1), name=index.name)
    return pd.RangeIndex(len(index), len(index) + horizon, name=index.name)


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(q) for q in levels)
    if not levels or any(not 0 < q < 1 for q in levels) or list(levels) != sorted(levels):
        raise ValueError(f"levels must be increasing and inside (0, 1), got {list(levels)}")
    return levels


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ----------------------------------------------------------------------------- seasonal naive
def seasonal_naive(history, horizon: int, season: int = 1, levels: Sequence[float] = LEVELS, samples: int = 0,
                   seed: Seed = None) -> Forecast:
    """Seasonal naive with empirical seasonal-random-walk quantiles (see the module docstring)."""
    levels = _check_levels(levels)
    y, index, notes = _history(history, horizon)
    m = int(season)
    if m < 1 or len(y) <= m:
        raise ValueError(f"seasonal naive with season {m} needs more than {m} points of history, got {len(y)}")
    k = np.arange(1, horizon + 1)
    seasons_ahead = np.ceil(k / m).astype(int)
    point = seasonal_naive_path(y, horizon, m)            # y[T + k - m ceil(k/m)] (m < len(y) checked above)
    residuals = y[m:] - y[:-m]
    offsets = np.quantile(residuals, levels) - np.quantile(residuals, 0.5)
    quantiles = point[None] + np.sqrt(seasons_ahead)[None] * offsets[:, None]
    paths = None
    if samples:
        draws = _rng(seed).choice(residuals - np.quantile(residuals, 0.5), size=(int(samples), horizon))
        paths = np.empty((int(samples), horizon))
        for j in range(horizon):
            paths[:, j] = (y[len(y) - m + j] if j < m else paths[:, j - m]) + draws[:, j]
    return Forecast("seasonal_naive", levels, quantiles, point.astype(np.float64), index, paths, tuple(notes))


# ----------------------------------------------------------------------------- statsmodels models
def _standardise(y: np.ndarray) -> tuple[np.ndarray, float, float]:
    loc, scale = float(np.mean(y)), float(np.std(y))
    scale = scale if scale > 0 else 1.0
    return (y - loc) / scale, loc, scale


def _standardised_history(history, horizon: int, minimum: int, model: str):
    """``(z, loc, scale, future index, notes)``: :func:`_history` standardised, at least ``minimum`` points."""
    y, index, notes = _history(history, horizon)
    if len(y) < minimum:
        raise ValueError(f"{model} needs at least {minimum} points of history, got {len(y)}")
    z, loc, scale = _standardise(y)
    return z, loc, scale, index, notes


def _simulated_paths(result, horizon: int, samples: int, seed: Seed):
    """``(samples, horizon)`` paths simulated from the end of a statsmodels fit, or None for ``samples == 0``."""
    if not samples:
        return None
    paths = result.simulate(horizon, anchor="end", repetitions=int(samples), rng=_rng(seed))
    return np.asarray(paths, dtype=np.float64).reshape(horizon, int(samples)).T


def _quiet_fit(fit):
    """``(result, converged)`` of ``fit()`` with every warning caught; ``(None, False)`` if it raises."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fit()
        except (ValueError, np.linalg.LinAlgError, RuntimeError):
            return None, False
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    converged &= bool(np.all(np.isfinite(np.asarray(result.params, dtype=np.float64))))
    return result, converged


def _gaussian(mean: np.ndarray, variance: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    from scipy.stats import norm

    return mean[None] + np.sqrt(np.maximum(variance, 0))[None] * norm.ppf(np.asarray(levels))[:, None]


def ets(history, horizon: int, season: int = 1, levels: Sequence[float] = LEVELS, samples: int = 0,
        seed: Seed = None) -> Forecast:
    """ETS(A,Ad,A) by maximum likelihood, with fallbacks (see the module docstring)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    levels = _check_levels(levels)
    z, loc, scale, index, notes = _standardised_history(history, horizon, 4, "ETS")
    data = pd.Series(z)                                   # statsmodels 0.15's get_prediction needs a pandas input
    m = int(season)
    seasonal = m > 1 and len(z) >= 2 * m + 2
    if m > 1 and not seasonal:
        notes.append(f"ETS: history of {len(z)} points is shorter than 2 seasons + 2; fitted without a season")
    attempts = (("add", True), ("add", False), (None, False))
    chosen = None
    for trend, damped in attempts:
        model = ETSModel(data, error="add", trend=trend, damped_trend=damped,
                         seasonal="add" if seasonal else None, seasonal_periods=m if seasonal else None)
        result, converged = _quiet_fit(lambda: model.fit(disp=False))
        if result is not None and (converged or chosen is None):
            chosen = (result, trend, damped, converged)
        if converged:
            break
    if chosen is None:
        raise RuntimeError("ETS: no model could be fitted to this history")
    result, trend, damped, converged = chosen
    name = f"ETS(A,{'N' if trend is None else 'Ad' if damped else 'A'},{'A' if seasonal else 'N'})"
    if (trend, damped) != ("add", True):
        notes.append(f"ETS: the damped-trend fit did not converge; used {name}")
    if not converged:
        notes.append(f"ETS: {name} did not converge either; its last estimate is used")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prediction = result.get_prediction(start=len(z), end=len(z) + horizon - 1)
        mean = np.asarray(prediction.predicted_mean, dtype=np.float64)
        rows = []
        for q in levels:
            if abs(q - 0.5) < 1e-9:
                rows.append(mean)
                continue
            frame = prediction.summary_frame(alpha=2 * min(q, 1 - q))
            rows.append(frame["pi_lower" if q < 0.5 else "pi_upper"].to_numpy(dtype=np.float64))
        paths = _simulated_paths(result, horizon, samples, seed)
    quantiles = loc + scale * np.stack(rows)
    return Forecast(name, levels, quantiles, loc + scale * mean, index,
                    None if paths is None else loc + scale * paths, tuple(notes))


#: the tiny ARIMA search: non-seasonal orders tried, picked by AIC
ARIMA_ORDERS = ((0, 1, 1), (1, 1, 0), (1, 1, 1))


def arima(history, horizon: int, season: int = 1, levels: Sequence[float] = LEVELS, samples: int = 0,
          seed: Seed = None) -> Forecast:
    """The lowest-AIC ARIMA of a tiny search, Gaussian quantiles (see the module docstring)."""
    from statsmodels.tsa.arima.model import ARIMA

    levels = _check_levels(levels)
    z, loc, scale, index, notes = _standardised_history(history, horizon, 5, "ARIMA")
    m = int(season)
    seasonal = (0, 1, 1, m) if m > 1 and len(z) >= 3 * m else (0, 0, 0, 0)
    if m > 1 and not any(seasonal):
        notes.append(f"ARIMA: history of {len(z)} points is shorter than 3 seasons; fitted without a season")
    trend = "n" if any(seasonal) else "t"                 # drift when only first differences are taken
    best, fallback = None, None
    for order in ARIMA_ORDERS:
        result, converged = _quiet_fit(lambda: ARIMA(z, order=order, seasonal_order=seasonal, trend=trend).fit())
        if result is None or not np.isfinite(result.aic):
            continue
        if converged and (best is None or result.aic < best[0].aic):
            best = (result, order)
        if fallback is None or result.aic < fallback[0].aic:
            fallback = (result, order)
    if best is None:
        if fallback is None:
            raise RuntimeError("ARIMA: no model could be fitted to this history")
        best = fallback
        notes.append("ARIMA: no candidate converged; the lowest-AIC estimate is used")
    result, order = best
    name = f"ARIMA{order}" + (f"x{seasonal[:3]}_{m}" if any(seasonal) else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecast = result.get_forecast(horizon)
        mean = np.asarray(forecast.predicted_mean, dtype=np.float64)
        quantiles = _gaussian(mean, np.asarray(forecast.var_pred_mean, dtype=np.float64), levels)
        paths = _simulated_paths(result, horizon, samples, seed)
    return Forecast(name, levels, loc + scale * quantiles, loc + scale * mean, index,
                    None if paths is None else loc + scale * paths, tuple(notes))


#: name -> function, for the benchmark
BASELINES = {"seasonal_naive": seasonal_naive, "ets": ets, "arima": arima}

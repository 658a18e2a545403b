"""``Forecaster``: probabilistic forecasts from the residual-shift model, on pandas and xarray data.

    from science.forecast import Forecaster
    fc = Forecaster.from_pretrained()                       # the shipped model, never downloads
    q = fc.predict(series, horizon=18)                      # pandas Series -> DataFrame: mean, q0.1 ... q0.9
    q = fc.predict(frame, horizon=8)                        # DataFrame of series -> columns (series, stat)
    q = fc.predict(da, horizon=12)                          # xarray DataArray (time, ...) -> (quantile, time, ...)

How a forecast is made (:mod:`.windows` for the window, :mod:`.data` for the training):

1. the last ``C = 96 - H`` points of the history (``C >= 24``) are standardised by their observed mean and
   standard deviation; the base forecast ``y`` is the seasonal naive one on the ``H`` future points and the
   context itself before them (missing values linearly interpolated);
2. ``samples`` paths are drawn by ResShift's posterior sampler from ``x_T = y + kappa sqrt(eta_T) eps``
   (``T = 4`` network evaluations per path, all paths in one batch), with hard data consistency on the
   observed points (the x0 estimate of every step keeps them exactly);
3. the paths' spread is calibrated on the history's own last horizons: the same model forecasts each of the
   last ``backtests = 3`` horizons from the points before it, and the paths are stretched about their median
   by the factor that would have made those forecasts' 80 % intervals right (:mod:`.calibration`);
4. the paths' future points, back in the series' units, give the mean and the quantiles
   (``numpy.quantile``); their missing context points are the imputation (:meth:`Forecaster.impute`).

:meth:`Forecaster.fine_tune` adapts a copy of the model to one series first (the CLI's ``--fit-seconds``).

A self-guided unconditional model (TSDiff; ``extra.method == "tsdiff"`` in its ``model.json``, trained by
``experiments/science/forecast_tsdiff.yaml``) goes through the same API: it sees no base forecast and is
conditioned on the observed points only by observation self-guidance (:class:`shared.self_guidance.
ObservationGuidance`, TSDiff's quantile form, sample ``k`` of ``N`` at level ``k / (N + 1)``) with the
DDIM solver (25 steps by default; one forward and one backward per step).

The season ``m`` of the base forecast comes from the time index (monthly 12, quarterly 4, weekly 52,
daily 7, hourly 24, else 1) unless given.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch

from shared.checkpoints import load_denoiser
from shared.data_consistency import DataConsistency, LinearMeasurement
from shared.files import InputError, device_from_string
from shared.pipeline import Pipeline, RunInfo, as_dtype
from shared.samplers import sample
from shared.self_guidance import ObservationGuidance, sample_quantiles

from . import calibration
from .baselines import Forecast, future_index, numeric_series
from .metrics import LEVELS
from .series import infer_season
from .windows import MIN_CONTEXT, WINDOW, make_window

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "resshift"

def measurement_of(observed: torch.Tensor, values: torch.Tensor) -> LinearMeasurement:
    """Observed points as linear measurements ``A x = m * x`` (``A`` self-adjoint), data ``m * y``."""
    return LinearMeasurement(lambda x: x * observed, lambda r: r * observed, values * observed)


class Forecaster(Pipeline):
    """Probabilistic forecasts and imputation with a residual-shift model (module docstring)."""

    def __init__(self, model, window: int = WINDOW, device: torch.device | str = "cpu", torch_dtype=torch.float32,
                 method: str = "resshift", guidance_scale: float = 4.0, base: str = "seasonal_naive"):
        self.model, self.window, self.method, self.guidance_scale = model, int(window), method, float(guidance_scale)
        self.base = base
        self.last_run = RunInfo()
        self.to(device, torch_dtype)

    def modules(self):
        return iter([self.model])

    @classmethod
    def from_pretrained(cls, path: Optional[str | os.PathLike] = None, device: str = "auto",
                        torch_dtype=torch.float32) -> "Forecaster":
        """Load local weights (``path`` None: the shipped model); never downloads."""
        folder = DEFAULT_MODEL if path is None else Path(path)
        if not (folder / "model.json").is_file():
            raise InputError(f"{folder}: no forecasting model there (model.json missing)")
        model, meta = load_denoiser(folder, device=device_from_string(device))
        extra = meta["extra"]
        return cls(model, int(extra.get("window", WINDOW)), device_from_string(device), as_dtype(torch_dtype),
                   extra.get("method", "resshift"), float(extra.get("guidance_scale", 4.0)),
                   extra.get("base", "seasonal_naive"))

    # ----------------------------------------------------------------- one series
    @torch.no_grad()
    def paths(self, history, horizon: int, season: int = 1, samples: int = 100,
              num_inference_steps: Optional[int] = None, generator: Optional[torch.Generator] = None):
        """``(window, paths)``: the :class:`.windows.Window` of ``history`` (NaN = missing) and ``samples``
        sampled windows ``(S, C + H)`` in the series' units."""
        if int(samples) < 1:
            raise InputError(f"samples must be >= 1, got {samples}")
        try:
            w = make_window(np.asarray(history, dtype=np.float64), int(horizon), int(season), self.window,
                            base=self.base)
        except ValueError as err:
            raise InputError(str(err)) from None
        n = int(samples)
        as_batch = lambda a: torch.from_numpy(a).to(self.device, self.dtype).expand(n, -1, -1)  # noqa: E731
        y, cond = as_batch(w.y[None]), as_batch(w.cond())
        observed = cond[:, :1]
        if self.method == "tsdiff":
            guided = ObservationGuidance(lambda x_t, t: self.model(x_t, t, torch.zeros_like(y), None),
                                         self.model.process, y, observed, scale=self.guidance_scale, kind="quantile",
                                         quantile=sample_quantiles(n).to(self.device).reshape(n, 1, 1))
            x0, nfe = sample(guided, self.model.process, torch.zeros_like(y),
                             num_inference_steps=num_inference_steps, generator=generator)
        else:
            dc = DataConsistency(measurement_of(observed, y))
            x0, nfe = sample(lambda x_t, t: self.model(x_t, t, y, cond), self.model.process, y,
                             num_inference_steps=num_inference_steps, generator=generator, callback=dc)
        self.last_run.network_evaluations += nfe
        return w, w.unscale(x0[:, 0].float().cpu().numpy())

    def forecast(self, history, horizon: int, season: Optional[int] = None, samples: int = 100,
                 levels: Sequence[float] = LEVELS, num_inference_steps: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, keep_samples: bool = False,
                 backtests: int = 3) -> Forecast:
        """A :class:`.baselines.Forecast` (quantiles at ``levels``, mean, future index, optional paths) of one
        history: a pandas Series on a regular index or a 1-D array; NaNs are missing values. With ``backtests``
        > 0 the paths' spread is calibrated on the history's last ``backtests`` horizons (:mod:`.calibration`;
        each costs one more batch of ``min(samples, 50)`` paths)."""
        series = numeric_series(history)
        values = series.to_numpy()
        season = infer_season(series.index) if season is None else int(season)
        h = int(horizon)
        _, paths = self.paths(values, h, season, samples, num_inference_steps, generator)
        future = paths[:, -h:]
        notes = []
        missing = int(np.isnan(values[-(paths.shape[1] - h):]).sum())
        if missing:
            notes.append(f"{missing} missing values of the context imputed by the model")
        if backtests > 0:
            factor, used = self.spread_factor(values, h, season, backtests, min(int(samples), 50),
                                              num_inference_steps, generator)
            future = calibration.stretch(future, factor)
            notes.append(f"spread x{factor:.2f}, calibrated on {used} backtest horizon{'s' * (used != 1)}")
        levels = tuple(float(q) for q in levels)
        return Forecast(self.method, levels, np.quantile(future, levels, axis=0), future.mean(axis=0),
                        future_index(series.index, h), future if keep_samples else None, tuple(notes))

    def spread_factor(self, values: np.ndarray, horizon: int, season: int, backtests: int, samples: int,
                      num_inference_steps: Optional[int] = None,
                      generator: Optional[torch.Generator] = None) -> tuple[float, int]:
        """``(s, B)``: the spread factor of :mod:`.calibration` from the ``B <= backtests`` last horizons of
        ``values`` that leave at least ``MIN_CONTEXT`` points before them (``s = 1`` when none does)."""
        all_scores = []
        for n in calibration.backtest_origins(len(values), horizon, backtests, MIN_CONTEXT):
            if np.isfinite(values[:n]).sum() < 2 or not np.isfinite(values[n:n + horizon]).any():
                continue
            _, paths = self.paths(values[:n], horizon, season, samples, num_inference_steps, generator)
            all_scores.append(calibration.scores(values[n:n + horizon], paths[:, -horizon:]))
        return calibration.spread_factor(all_scores), len(all_scores)

    def impute(self, history, season: Optional[int] = None, samples: int = 32,
               generator: Optional[torch.Generator] = None) -> pd.Series:
        """``history`` with its missing values in the last window replaced by the median of ``samples``
        sampled completions (observed values are kept exactly)."""
        series = numeric_series(history)
        values = series.to_numpy()
        season = infer_season(series.index) if season is None else int(season)
        _, paths = self.paths(values, 1, season, samples, generator=generator)
        context = np.median(paths[:, :-1], axis=0)
        out = values.copy()
        tail = min(len(out), len(context))
        gaps = np.isnan(out[-tail:])
        out[-tail:][gaps] = context[-tail:][gaps]
        return pd.Series(out, index=series.index, name=series.name)

    def fine_tune(self, history, horizon: int, seconds: Optional[float] = 10.0, season: Optional[int] = None,
                  max_steps: Optional[int] = None, batch_size: int = 32, lr: float = 1e-4, seed: int = 0,
                  progress=None) -> "Forecaster":
        """A copy of this forecaster adapted to one series (``--fit-seconds``): the model trained further on
        windows of ``history`` alone (:class:`.data.ForecastWindows`: every window end of the history, horizons
        1..``horizon``, simulated gaps) for ``seconds`` of wall time or ``max_steps`` steps, with the process's
        own loss and the average of the visited weights (:func:`shared.training.finetune.fine_tune`).
        Only the history is seen: the future being forecast never is. ``self`` is not modified."""
        from shared.training.finetune import fine_tune

        from .data import ForecastWindows

        if self.method != "resshift":
            raise InputError(f"fine-tuning is for the residual-shift model, not {self.method}")
        series = numeric_series(history)
        season = infer_season(series.index) if season is None else int(season)
        items = ForecastWindows([(series.to_numpy(np.float64), season)], size=int(batch_size), max_horizon=int(horizon),
                                window=self.window, p_real=1.0, seed=int(seed), base=self.base)
        steps = itertools.count()

        def batch() -> dict[str, torch.Tensor]:
            items.epoch = next(steps)                   # items are pure functions of (seed, epoch, index)
            drawn = [items[i] for i in range(int(batch_size))]
            return {k: torch.stack([d[k] for d in drawn]).to(self.device, self.dtype) for k in drawn[0]}

        tuned, _ = fine_tune(self.model, batch, seconds=seconds, max_steps=max_steps, lr=lr,
                             generator=torch.Generator().manual_seed(int(seed)), progress=progress)
        return Forecaster(tuned, self.window, self.device, self.dtype, self.method, self.guidance_scale, self.base)

    # ----------------------------------------------------------------- pandas / xarray
    def predict(self, data, horizon: int, samples: int = 100, quantiles: Sequence[float] = LEVELS,
                season: Optional[int] = None, num_inference_steps: Optional[int] = None,
                generator: Optional[torch.Generator] = None, return_samples: bool = False, backtests: int = 3):
        """Forecast every series of ``data``; the result is of the same kind with a quantile (or sample) axis.

        * ``pd.Series`` -> ``DataFrame`` indexed by the future times, columns ``mean`` and ``q0.1`` ...
          (``return_samples``: columns ``0 .. samples-1``, the paths);
        * ``pd.DataFrame`` (one series per column) -> the same with columns ``(series, stat)``;
        * ``xr.DataArray`` with a ``time`` dimension (any other dimensions index separate series) ->
          dims ``("quantile", "time", ...)`` on the future times, the levels as the ``quantile``
          coordinate and the mean as a ``mean`` coordinate over ``("time", ...)``; name and attributes
          are kept (``return_samples``: a ``sample`` dimension instead).
        """
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        start, self.last_run = time.perf_counter(), RunInfo(method=self.method)
        kw = dict(season=season, samples=samples, levels=quantiles, num_inference_steps=num_inference_steps,
                  generator=generator, keep_samples=return_samples, backtests=backtests)
        if isinstance(data, pd.Series):
            out = self._frame(self.forecast(data, horizon, **kw), return_samples)
        elif isinstance(data, pd.DataFrame):
            out = pd.concat({str(c): self._frame(self.forecast(data[c], horizon, **kw), return_samples)
                             for c in data.columns}, axis=1, names=["series", "stat"])
        else:
            out = self._xarray(data, horizon, kw, return_samples)
        self.last_run.seconds = time.perf_counter() - start
        return out

    @staticmethod
    def _frame(f: Forecast, return_samples: bool) -> pd.DataFrame:
        if return_samples:
            return pd.DataFrame(f.samples.T, index=f.index)
        return f.frame()

    def _xarray(self, da, horizon: int, kw: dict, return_samples: bool):
        import xarray as xr

        if not isinstance(da, xr.DataArray) or "time" not in da.dims:
            raise InputError("predict takes a pandas Series or DataFrame, or an xarray DataArray with a 'time' dimension")
        other = [d for d in da.dims if d != "time"]
        stacked = da.transpose("time", *other).stack(series=other) if other else da.expand_dims(series=[0], axis=1)
        index = stacked.indexes["time"]
        results = [self.forecast(pd.Series(stacked.isel(series=j).values, index=index), horizon, **kw)
                   for j in range(stacked.sizes["series"])]
        future = results[0].index
        if return_samples:
            values = np.stack([r.samples for r in results], axis=-1)                 # (S, H, series)
            out = xr.DataArray(values, dims=("sample", "time", "series"),
                               coords={"sample": np.arange(values.shape[0]), "time": future})
        else:
            values = np.stack([r.quantiles for r in results], axis=-1)               # (Q, H, series)
            out = xr.DataArray(values, dims=("quantile", "time", "series"),
                               coords={"quantile": list(results[0].levels), "time": future})
            out = out.assign_coords(mean=(("time", "series"), np.stack([r.mean for r in results], axis=-1)))
        if other:
            out = out.assign_coords(xr.Coordinates.from_pandas_multiindex(stacked.indexes["series"], "series"))
            out = out.unstack("series")
        else:
            out = out.isel(series=0, drop=True)
        out.name, out.attrs = da.name, dict(da.attrs)
        return out

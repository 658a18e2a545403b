"""Probabilistic time-series forecasting (issue 16): a residual-shift diffusion model and the baselines.

* :class:`Forecaster` (:mod:`.forecaster`): forecasts (mean, quantiles, sample paths) and imputation of
  missing values with the residual-shift model, on arrays, pandas Series / DataFrames and xarray DataArrays;
* the statistical baselines (:mod:`.baselines`: seasonal naive, ETS, ARIMA) and the scores
  (:mod:`.metrics`: weighted quantile loss, MASE, interval coverage);
* the real offline series and their split by time (:mod:`.series`), the model's window (:mod:`.windows`)
  and its training data (:mod:`.data`);
* the command line ``python -m science.forecast INPUT.csv -o OUT.csv --horizon H`` (:mod:`.cli`, tables
  read and written by :mod:`.table`).

``from science.forecast import Forecaster`` (lazy: importing the package loads nothing heavy).
"""

from __future__ import annotations

from shared.lazy import lazy_attributes

__all__ = ["Forecaster"]
__getattr__ = lazy_attributes(__name__, {"Forecaster": ".forecaster"})

"""Probabilistic time-series forecasting (issue 16), in progress.

So far: the real offline series and their split by time (:mod:`.series`), the scores
(:mod:`.metrics`: weighted quantile loss, MASE, interval coverage) and the statistical baselines
(:mod:`.baselines`: seasonal naive, ETS, ARIMA). The diffusion forecaster is not written yet.
"""

"""Training data for the forecasting model (Lightning data module): windows of real and synthetic series.

One global model is trained on every series at once and used zero-shot (README: why, measured). Each item is
a window of ``L = 96`` points (:mod:`.windows`) with a horizon ``H`` drawn from 1..``max_horizon``:
``{"x0": (1, L) standardised truth, "y": (1, L) base forecast, "cond": (2, L) [observed, future]}``.

* **Real** (half the items): a window ending anywhere in the *training part* of a real registry series
  (:func:`.series.split`: everything before its first validation window, never the validation windows
  themselves), with that series' season; it may start before the series does (those points are missing).
* **Synthetic** (the other half): :func:`random_series`, a seeded random draw of level, damped trend, random
  walk, a season of 1, 4, 7, 12, 24 or 52 with random harmonics (additive or multiplicative), AR(1) noise,
  occasional level shifts and outliers: breadth the 18 real series cannot give.

With ``unconditional`` the items are ``{"x0", "y": zeros}`` only: the training data of the self-guided
unconditional model (TSDiff), which sees no base forecast and no masks and is conditioned at sampling time.

Missing values are simulated in the context (the truth stays in ``x0``), so the same model imputes:
with probability ``p_gaps`` a random 2-20 % of the context points, and with probability ``p_short`` the
window's first points (a history shorter than the window). Item ``i`` of an epoch is a pure function of
``(seed, epoch, i)``.
"""

from __future__ import annotations

from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .series import REAL, SERIES, load, split
from .windows import MIN_CONTEXT, WINDOW, make_window

SEASONS = (1, 4, 7, 12, 24, 52)
SEASON_WEIGHTS = (0.2, 0.2, 0.1, 0.3, 0.1, 0.1)


def random_series(rng: np.random.Generator, length: int) -> tuple[np.ndarray, int]:
    """``(values, season)``: one synthetic series (module docstring)::

        x_t = level + b (1 - phi^t) / (1 - phi) + w_t + s_t (1 + mult x_t^trend / 10) + a_t + shifts + outliers
        s_t = A sum_k c_k sin(2 pi k t / m + p_k),   w_t = sum N(0, sigma_w^2),   a_t = rho a_{t-1} + N(0, sigma^2)
    """
    t = np.arange(length, dtype=np.float64)
    m = int(rng.choice(SEASONS, p=SEASON_WEIGHTS))
    phi = rng.uniform(0.9, 1.0)
    trend = rng.normal(0, 0.05) * (rng.random() < 0.6) * (1 - phi ** t) / (1 - phi + 1e-9)
    walk = np.cumsum(rng.normal(0, np.exp(rng.normal(-2.0, 0.7)), length)) * (rng.random() < 0.35)
    season = np.zeros(length)
    if m > 1:
        for k in range(1, int(rng.integers(1, 4)) + 1):
            season += rng.normal(0, 1.0 / k) * np.sin(2 * np.pi * k * t / m + rng.uniform(0, 2 * np.pi))
        season *= np.exp(rng.normal(0, 0.7))
        if rng.random() < 0.2:                                   # multiplicative: grows with the trend
            season *= 1 + (trend - trend.min()) / 10
    rho, sigma = rng.uniform(0, 0.9), np.exp(rng.normal(-1.5, 0.8))
    noise = np.zeros(length)
    e = rng.normal(0, sigma, length)
    for i in range(length):
        noise[i] = (rho * noise[i - 1] if i else 0.0) + e[i]
    x = rng.normal(0, 5) + trend + walk + season + noise
    if rng.random() < 0.1:
        x[int(rng.integers(1, length)):] += rng.normal(0, 2 * x.std() + 1e-3)
    if rng.random() < 0.1:
        spikes = rng.random(length) < 0.01
        x[spikes] += rng.normal(0, 4 * (sigma + 1e-3), int(spikes.sum()))
    return x, m


def training_parts(names=REAL) -> list[tuple[np.ndarray, int]]:
    """``(values, season)`` of the training part (before the validation windows) of each registry series."""
    parts = []
    for name in names:
        info = SERIES[name]
        parts.append((split(load(name), info.horizon, info.windows).train.to_numpy(np.float64), info.season))
    return parts


def simulate_gaps(rng: np.random.Generator, context: np.ndarray, p_gaps: float, p_short: float) -> np.ndarray:
    """A copy of ``context`` with simulated missing values (NaN); at least ``MIN_CONTEXT`` stay observed."""
    ctx = context.copy()
    c = len(ctx)
    if rng.random() < p_short and c > MIN_CONTEXT:
        ctx[: int(rng.integers(1, c - MIN_CONTEXT + 1))] = np.nan
    if rng.random() < p_gaps:
        ctx[rng.random(c) < rng.uniform(0.02, 0.2)] = np.nan
    if np.isfinite(ctx).sum() < 2:                               # keep the last two points the source has
        keep = np.flatnonzero(np.isfinite(context))[-2:]
        ctx[keep] = context[keep]
    return ctx


class ForecastWindows(Dataset):
    """``size`` windows per epoch, half from real training parts, half synthetic (module docstring)."""

    def __init__(self, parts: list[tuple[np.ndarray, int]], size: int, max_horizon: int = 32, window: int = WINDOW,
                 p_real: float = 0.5, p_gaps: float = 0.25, p_short: float = 0.2, seed: int = 0, fixed: bool = False,
                 unconditional: bool = False, base: str = "seasonal_naive"):
        self.base = base
        self.parts, self.size, self.max_horizon, self.window = parts, int(size), int(max_horizon), int(window)
        self.unconditional = unconditional
        self.p_real, self.p_gaps, self.p_short, self.seed, self.fixed = p_real, p_gaps, p_short, seed, fixed
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
        """``(values, season, horizon)``: ``window`` consecutive points (NaN before a real series' start; at
        least ``MIN_CONTEXT`` observed before the horizon) and their season."""
        if self.parts and rng.random() < self.p_real:
            values, season = self.parts[int(rng.integers(len(self.parts)))]
            h = int(rng.integers(1, max(1, min(self.max_horizon, len(values) - MIN_CONTEXT)) + 1))
            end = int(rng.integers(min(len(values), MIN_CONTEXT + h), len(values) + 1))
            piece = values[max(0, end - self.window):end]
            return np.concatenate([np.full(self.window - len(piece), np.nan), piece]), season, h
        values, season = random_series(rng, self.window)
        return values, season, int(rng.integers(1, self.max_horizon + 1))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index])
        values, season, h = self.draw(rng)
        c = self.window - h
        history = simulate_gaps(rng, values[:c], self.p_gaps, self.p_short)
        w = make_window(history, h, season, self.window, future=values[c:], base=self.base)
        truth = (values - w.loc) / w.scale
        x0 = np.where(np.isfinite(truth), truth, w.y)          # before a real series' start: the base values
        if self.unconditional:
            return {"x0": torch.from_numpy(x0.astype(np.float32))[None], "y": torch.zeros(1, self.window)}
        return {"x0": torch.from_numpy(x0.astype(np.float32))[None], "y": torch.from_numpy(w.y)[None],
                "cond": torch.from_numpy(w.cond())}


class ForecastData(pl.LightningDataModule):
    """Windows for training (``steps_per_epoch * batch_size`` fresh items per epoch) and a fixed seeded
    validation set (``val_size`` items of the same mix, a different seed)."""

    def __init__(self, batch_size: int = 64, steps_per_epoch: int = 500, val_size: int = 256, max_horizon: int = 32,
                 window: int = WINDOW, p_real: float = 0.5, unconditional: bool = False, num_workers: int = 0,
                 seed: int = 0, base: str = "seasonal_naive"):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: Optional[str] = None) -> None:
        hp = self.hparams
        parts = training_parts()
        self.train_set = ForecastWindows(parts, hp.steps_per_epoch * hp.batch_size, hp.max_horizon, hp.window,
                                         hp.p_real, seed=hp.seed, unconditional=hp.unconditional, base=hp.base)
        self.val_set = ForecastWindows(parts, hp.val_size, hp.max_horizon, hp.window, hp.p_real,
                                       seed=hp.seed + 1, fixed=True, unconditional=hp.unconditional, base=hp.base)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        self.train_set.epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return DataLoader(self.train_set, batch_size=hp.batch_size, shuffle=False, num_workers=hp.num_workers,
                          drop_last=True, persistent_workers=False)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.val_size, shuffle=False)

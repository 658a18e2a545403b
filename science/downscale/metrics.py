"""Scores of downscaled ensembles (numpy): CRPS, RMSE of the ensemble mean, spread-skill, rank histogram,
and the radially averaged power spectrum.

Shapes: ``members`` is an ensemble with the member axis ``axis`` (default 0), ``M`` members, the other
axes the shape of ``truth`` (any: one field ``(H, W)``, a batch ``(T, H, W)``). Points where the truth
is NaN (land in a sea-surface field) are skipped: left out of every average and count; members that are
NaN where the truth is finite raise ``ValueError`` (a model that loses points should be seen).
Averages are plain means over the points (not area-weighted).

* CRPS of an ensemble ``X_1..X_M`` for the truth ``y`` (Gneiting & Raftery 2007; the fair version
  Ferro 2014, unbiased for the CRPS of the distribution the members are drawn from)::

      CRPS_fair  = 1/M sum_i |X_i - y| - 1/(2 M (M - 1)) sum_{i,j} |X_i - X_j|
      CRPS_plain = 1/M sum_i |X_i - y| - 1/(2 M^2)       sum_{i,j} |X_i - X_j|

  (plain = properscoring's ``crps_ensemble``, scoringrules' ``"nrg"`` / ``"qd"``; fair = scoringrules'
  ``"fair"`` / ``"pwm"``). The pair sum is ``sum_{i,j} |X_i - X_j| = 2 sum_k (2k - M - 1) X_(k)`` over
  the sorted members ``X_(1) <= ... <= X_(M)``: O(M log M) per point.
* RMSE of the ensemble mean: ``sqrt(mean_p (Xbar_p - y_p)^2)``, ``Xbar = 1/M sum_i X_i``.
* Spread-skill ratio (Fortin et al. 2014)::

      spread = sqrt((M + 1)/M * mean_p s_p^2),   s_p^2 = 1/(M - 1) sum_i (X_ip - Xbar_p)^2
      SSR    = spread / RMSE(Xbar)

  For members and truth exchangeable (drawn from the same distribution)
  ``E (Xbar - y)^2 = (M + 1)/M E s^2``, so SSR -> 1; < 1 is under-dispersed, > 1 over-dispersed.
* Rank histogram (Talagrand): the rank ``r = #{i: X_i < y} + U`` of the truth among the members, ``U``
  uniform on ``0..#{i: X_i = y}`` (ties broken at random, seeded), counted in ``M + 1`` bins; flat for
  a calibrated ensemble, U-shaped when under-dispersed.
* Radially averaged power spectrum: see :func:`radial_power_spectrum`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def _prepare(members, truth, axis: int, min_members: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, finite)``: members moved to axis 0 as float64, the truth, the mask of finite truth."""
    x = np.moveaxis(np.asarray(members, dtype=np.float64), axis, 0)
    y = np.asarray(truth, dtype=np.float64)
    if x.shape[1:] != y.shape:
        raise ValueError(f"members {x.shape[1:]} (after the member axis) and truth {y.shape} differ in shape")
    if x.shape[0] < min_members:
        raise ValueError(f"this score needs at least {min_members} members, got {x.shape[0]}")
    finite = ~np.isnan(y)
    if not finite.any():
        raise ValueError("the truth has no finite value to score")
    if np.isnan(x[:, finite]).any():
        raise ValueError("members are NaN where the truth is finite")
    return x, y, finite


def _mean(values: np.ndarray, finite: np.ndarray) -> float:
    return float(values[finite].mean())


def crps_ensemble(members, truth, fair: bool = True, axis: int = 0, average: bool = True):
    """CRPS of the ensemble (fair by default; see the module docstring for both estimators), by sorting.

    ``average=True``: the mean over the points with finite truth (a float); ``False``: per point, shaped
    like ``truth``, NaN where the truth is NaN. The fair estimator needs ``M >= 2``."""
    x, y, finite = _prepare(members, truth, axis, 2 if fair else 1)
    m = x.shape[0]
    x = np.where(finite, x, 0.0)                               # NaN truth points: computed on zeros, masked
    skill = np.abs(x - np.where(finite, y, 0.0)).mean(axis=0)
    weights = (2.0 * np.arange(1, m + 1) - m - 1).reshape((m,) + (1,) * y.ndim)
    pairs = (weights * np.sort(x, axis=0)).sum(axis=0)         # = 1/2 sum_{i,j} |X_i - X_j|
    crps = skill - pairs / (m * (m - 1) if fair else m * m)
    crps = np.where(finite, crps, np.nan)
    return _mean(crps, finite) if average else crps


def rmse_of_mean(members, truth, axis: int = 0) -> float:
    """``sqrt(mean_p (Xbar_p - y_p)^2)`` over the points with finite truth."""
    x, y, finite = _prepare(members, truth, axis)
    return float(np.sqrt(np.mean((x[:, finite].mean(axis=0) - y[finite]) ** 2)))


def ensemble_spread(members, truth, axis: int = 0) -> float:
    """``sqrt((M + 1)/M * mean_p s_p^2)`` with the unbiased member variance ``s_p^2`` (ddof 1), over the
    points with finite truth (Fortin et al. 2014)."""
    x, y, finite = _prepare(members, truth, axis, 2)
    m = x.shape[0]
    return float(np.sqrt((m + 1) / m * np.mean(x[:, finite].var(axis=0, ddof=1))))


def spread_skill(members, truth, axis: int = 0) -> float:
    """Spread-skill ratio ``SSR = sqrt((M + 1)/M * mean_p s_p^2) / sqrt(mean_p (Xbar_p - y_p)^2)``
    (:func:`ensemble_spread` over :func:`rmse_of_mean`): 1 for a calibrated ensemble, < 1 under-dispersed."""
    rmse = rmse_of_mean(members, truth, axis)
    spread = ensemble_spread(members, truth, axis)
    return float(spread / rmse) if rmse > 0 else float("inf") if spread > 0 else float("nan")


def rank_histogram(members, truth, axis: int = 0, seed: Optional[int] = 0) -> np.ndarray:
    """Counts (``M + 1`` bins, int) of the truth's rank ``#{i: X_i < y} + U`` among the ``M`` members,
    ``U`` uniform on ``0..#{i: X_i = y}`` from ``numpy.random.default_rng(seed)``; NaN truth skipped."""
    x, y, finite = _prepare(members, truth, axis)
    m = x.shape[0]
    xf, yf = x[:, finite], y[finite]
    below = (xf < yf).sum(axis=0)
    ties = (xf == yf).sum(axis=0)
    rank = below + np.random.default_rng(seed).integers(0, ties + 1)
    return np.bincount(rank, minlength=m + 1)


def radial_power_spectrum(field, window: Optional[str] = "hann", spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(wavenumbers, power)``: the radially averaged power spectrum of a 2-D field ``(H, W)`` or of each
    field of a batch ``(..., H, W)`` (power shaped ``(..., K)``).

    Convention: each field's mean is removed, then (default) it is multiplied by the 2-D Hann window
    ``w_ij = h_i h_j``, ``h_n = 1/2 - 1/2 cos(2 pi n / (N - 1))``, and transformed (``numpy.fft.fft2``,
    ``F_k``). The power of a mode is ``P_k = |F_k|^2 / sum_ij w_ij^2``, so white noise of variance
    ``sigma^2`` has ``E P_k = sigma^2`` at every ``k`` (flat; its lowest bin reads about 6 % low with the
    window, as removing the mean takes the part of the noise the window leaks there). Modes are binned by
    ``|k| = sqrt(k_x^2 + k_y^2)`` (cycles per grid cell, ``numpy.fft.fftfreq``) into bins of width
    ``dk = 1 / min(H, W)`` centred on ``n dk``, ``n = 1 .. floor(min(H, W) / 2)``, and averaged in each bin
    (the corners past the Nyquist circle ``|k| > 1/2`` are left out). ``wavenumbers = n dk / spacing``
    (cycles per unit of ``spacing``, the cell size).

    Why a window: the fields here are regional crops, not periodic; the jump between opposite edges of
    an unwindowed field adds power falling as ``|k|^-2`` at every wavenumber, which hides the steep
    small-scale spectra (``|k|^-3`` and steeper) that tell a diffusion ensemble from a smooth regression.
    The Hann window tapers the edges to zero, at the cost of blurring the lowest bins; models and truth
    share the convention, so their ratio is unaffected. ``window=None`` gives the plain periodogram (mean
    removed), exact for periodic fields. NaN (land) is not allowed: fill it or crop to the sea first."""
    f = np.asarray(field, dtype=np.float64)
    if f.ndim < 2:
        raise ValueError(f"the power spectrum needs a 2-D field (or a batch of them), got shape {f.shape}")
    if np.isnan(f).any():
        raise ValueError("the field has NaN (land?): fill it or crop to finite cells before the spectrum")
    h, w = f.shape[-2:]
    if min(h, w) < 4:
        raise ValueError(f"field {h} x {w} is too small for a spectrum (at least 4 x 4)")
    f = f - f.mean(axis=(-2, -1), keepdims=True)
    if window == "hann":
        taper = np.outer(np.hanning(h), np.hanning(w))
    elif window is None:
        taper = np.ones((h, w))
    else:
        raise ValueError(f"window {window!r}: choose 'hann' or None")
    power = np.abs(np.fft.fft2(f * taper)) ** 2 / np.sum(taper ** 2)
    ky, kx = np.fft.fftfreq(h), np.fft.fftfreq(w)
    k = np.hypot(ky[:, None], kx[None, :])
    dk = 1.0 / min(h, w)
    n = np.rint(k / dk).astype(np.int64)
    nbins = min(h, w) // 2
    keep = (n >= 1) & (n <= nbins) & (k <= 0.5 + 1e-12)
    index = n[keep] - 1
    counts = np.bincount(index, minlength=nbins)
    flat = power[..., keep].reshape(-1, index.size)
    sums = np.stack([np.bincount(index, weights=row, minlength=nbins) for row in flat])
    spectrum = (sums / counts).reshape(power.shape[:-2] + (nbins,))
    return np.arange(1, nbins + 1) * dk / spacing, spectrum

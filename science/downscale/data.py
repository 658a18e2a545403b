"""Training data for downscaling (Lightning data module): patches of a fine field, its coarse input, statics.

Perfect-model set-up (:func:`.fields.coarsen`): the coarse field is the ``F x F`` block mean of the fine one.
Everything the network sees is on the fine grid and standardised by statistics of the training part::

    x0    = (x - mu) / sigma                                     the fine field            (1, P, P)
    y     = up_F((coarse - mu) / sigma)                          the coarse field, bilinear (1, P, P)
    cond  = [(s_k - mu_k) / sigma_k ..., m]                      static fields, NaN mask   (S [+1], P, P)

``up_F`` is bilinear interpolation of the *whole* coarse field to the fine grid (``align_corners=False``,
cell centres), computed once, so a training patch sees exactly what the same patch of a whole-field
prediction sees. Where the fine field is NaN (land in a sea-surface field) ``x0`` is filled with ``y`` and
the mask channel ``m`` is 1 (0 elsewhere; the channel exists only when the training field has NaN), so the
model learns to leave those cells alone and the prediction puts NaN back there; a coarse block of NaN only
reads as 0 (the mean) in ``y``.

Patches of ``P x P`` fine cells start on the coarse grid (multiples of ``F``) at a random time; the
validation patches are a fixed seeded draw from the validation part (:func:`.fields.split`: held-out times
or the easternmost longitude band, never random pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


@dataclass(frozen=True)
class Standardiser:
    """``(x - mean) / std`` of one variable and each static field (statistics of the training part)."""

    mean: float
    std: float
    static: tuple[tuple[float, float], ...] = ()

    @classmethod
    def fit(cls, fine: np.ndarray, static: Optional[np.ndarray] = None) -> "Standardiser":
        def stats(a: np.ndarray) -> tuple[float, float]:
            finite = a[np.isfinite(a)]
            if finite.size == 0:
                raise ValueError("the field is NaN everywhere")
            return float(finite.mean()), float(max(finite.std(), 1e-6 * max(abs(finite.mean()), 1.0)))

        mean, std = stats(fine)
        return cls(mean, std, tuple(stats(s) for s in (static if static is not None else ())))

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "static": [list(s) for s in self.static]}

    @classmethod
    def from_dict(cls, d: dict) -> "Standardiser":
        return cls(float(d["mean"]), float(d["std"]), tuple(tuple(map(float, s)) for s in d.get("static", [])))


def block_mean(fine: torch.Tensor, factor: int) -> torch.Tensor:
    """``coarse[I, J] = nanmean of fine over the F x F block (I, J)`` on the last two axes (NaN for a block of
    NaN only), the torch twin of :func:`.fields.coarsen` (trailing cells dropped)."""
    f = int(factor)
    h, w = fine.shape[-2] // f * f, fine.shape[-1] // f * f
    x = fine[..., :h, :w]
    finite = torch.isfinite(x)
    blocks = lambda a: a.reshape(*a.shape[:-2], h // f, f, w // f, f).sum(dim=(-3, -1))  # noqa: E731
    total, count = blocks(torch.where(finite, x, torch.zeros_like(x))), blocks(finite.to(x.dtype))
    return torch.where(count > 0, total / count.clamp(min=1), torch.full_like(total, float("nan")))


def upsample(coarse: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear interpolation of ``(..., h, w)`` to ``(..., F h, F w)`` at the fine cell centres; NaN cells
    read as 0 first (the standardised mean)."""
    lead = coarse.shape[:-2]
    x = torch.nan_to_num(coarse, nan=0.0).reshape(-1, 1, *coarse.shape[-2:])
    out = F.interpolate(x, scale_factor=int(factor), mode="bilinear", align_corners=False)
    return out.reshape(*lead, *out.shape[-2:])


class FieldPatches(Dataset):
    """``size`` random ``P x P`` patches of ``fine (T, H, W)`` (standardised, NaN allowed) with ``static
    (S, H, W)`` (standardised): items ``{"x0", "y", "cond"}`` of the module docstring. Item ``i`` of epoch
    ``e`` is a pure function of ``(seed, e, i)``; ``fixed`` keeps epoch 0 (validation)."""

    def __init__(self, fine: np.ndarray, static: Optional[np.ndarray], factor: int, patch: int, size: int,
                 mask_channel: bool, seed: int = 0, fixed: bool = False):
        f, p = int(factor), int(patch)
        if p % f:
            raise ValueError(f"patch {p} is not a multiple of the factor {f}")
        t, h, w = fine.shape
        if h < p or w < p:
            raise ValueError(f"a grid of {h} x {w} cells is smaller than the {p} x {p} training patch")
        self.fine = torch.from_numpy(np.ascontiguousarray(fine, dtype=np.float32))
        self.y = upsample(block_mean(self.fine, f), f)                     # (T, H', W'), H' = H // F * F
        self.static = None if static is None else torch.from_numpy(np.ascontiguousarray(static, dtype=np.float32))
        self.factor, self.patch, self.size, self.mask_channel = f, p, int(size), bool(mask_channel)
        self.seed, self.fixed, self.epoch = int(seed), bool(fixed), 0
        self.starts = ((self.y.shape[-2] - p) // f + 1, (self.y.shape[-1] - p) // f + 1)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, index])
        t = int(rng.integers(self.fine.shape[0]))
        i, j = (int(rng.integers(n)) * self.factor for n in self.starts)
        window = (slice(i, i + self.patch), slice(j, j + self.patch))
        x, y = self.fine[t][window], self.y[t][window]
        nan = ~torch.isfinite(x)
        channels = [] if self.static is None else [self.static[:, window[0], window[1]]]
        if self.mask_channel:
            channels.append(nan[None].to(torch.float32))
        item = {"x0": torch.where(nan, y, x)[None], "y": y[None]}
        if channels:
            item["cond"] = torch.cat(channels)
        return item


class DownscaleData(pl.LightningDataModule):
    """Patches of a registry field (:mod:`.fields`) for training: ``var`` downscaled by ``factor`` with the
    ``static`` fields as inputs, split ``by`` time or region (module docstring). The standardisation and
    the settings a model needs at inference are in :attr:`settings` after :meth:`setup`."""

    def __init__(self, field: str = "linke_turbidity", var: str = "linke_turbidity",
                 static: Sequence[str] = ("altitude", "altitude_missing"), factor: int = 4, patch: int = 64,
                 split_by: str = "region", fraction: float = 0.2, batch_size: int = 16, steps_per_epoch: int = 500,
                 val_size: int = 64, num_workers: int = 0, seed: int = 0, dataset=None):
        """``dataset``: an ``xr.Dataset`` to train on instead of the registry field ``field``
        (:meth:`.Downscaler.fit`); ``static`` then names its static variables."""
        super().__init__()
        self.save_hyperparameters(ignore=["dataset"])
        self.dataset = dataset
        self.settings: dict = {}

    def setup(self, stage: Optional[str] = None) -> None:
        from .fields import load, spatial_dims, split

        hp = self.hparams
        ds = self.dataset if self.dataset is not None else load(hp.field)
        train, val = split(ds, by=hp.split_by, fraction=hp.fraction, factor=hp.factor)
        fine_t, static_t = arrays(train, hp.var, hp.static)
        fine_v, static_v = arrays(val, hp.var, hp.static)
        norm = Standardiser.fit(fine_t, static_t)
        mask = bool(np.isnan(fine_t).any())
        make = lambda fine, static, size, seed, fixed: FieldPatches(  # noqa: E731
            standardise(fine, norm), standardise_static(static, norm), hp.factor, hp.patch, size, mask, seed, fixed)
        self.train_set = make(fine_t, static_t, hp.steps_per_epoch * hp.batch_size, hp.seed, False)
        self.val_set = make(fine_v, static_v, hp.val_size, hp.seed + 1, True)
        var = ds[hp.var]
        self.settings = {"var": hp.var, "factor": int(hp.factor), "patch": int(hp.patch), "static": list(hp.static),
                         "mask_channel": mask,
                         "norm": norm.to_dict(), "dims": list(spatial_dims(ds)),
                         "units": var.attrs.get("units"), "field": hp.field if self.dataset is None else None}

    def train_dataloader(self) -> DataLoader:
        self.train_set.epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=False,
                          num_workers=self.hparams.num_workers, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.val_size, shuffle=False)


def arrays(ds, var: str, static: Sequence[str]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``(fine (T, H, W), static (S, H, W) or None)`` as float32 from a Dataset: every dimension but the two
    spatial ones is flattened into ``T`` (time, level, member ...)."""
    from .fields import spatial_dims

    lat, lon = spatial_dims(ds)
    da = ds[var]
    other = [d for d in da.dims if d not in (lat, lon)]
    fine = da.transpose(*other, lat, lon).values.reshape(-1, da.sizes[lat], da.sizes[lon]).astype(np.float32)
    if not static:
        return fine, None
    return fine, np.stack([ds[s].transpose(lat, lon).values.astype(np.float32) for s in static])


def standardise(fine: np.ndarray, norm: Standardiser) -> np.ndarray:
    return ((fine - norm.mean) / norm.std).astype(np.float32)


def standardise_static(static: Optional[np.ndarray], norm: Standardiser) -> Optional[np.ndarray]:
    if static is None:
        return None
    return np.nan_to_num(np.stack([(s - m) / sd for s, (m, sd) in zip(static, norm.static)])).astype(np.float32)

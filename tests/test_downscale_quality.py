"""Quality smoke test of the shipped downscaler (science/downscale/weights/linke_x8): on two held-out fields
(longitudes never seen in training) the mean of 16 members must beat bicubic interpolation's RMSE, and the
ensemble must have a spread (the benchmark, experiments/science/benchmark_downscale.py, measures the rest)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from science.downscale import Downscaler, metrics
from science.downscale.fields import coarsen, load, split


def held_out_crop(i: int, j: int, month: int, size: int = 64):
    ds = load("linke_turbidity")
    _, val = split(ds, by="region", fraction=0.2, factor=8)
    crop = val.isel(latitude=slice(i, i + size), longitude=slice(j, j + size)).sel(month=[month])
    assert float(crop.altitude_missing.mean()) < 0.5, "the crop should be mostly land"
    return crop


# central China (34.7 N 114.7 E) in January, north-east China and Korea (43.4 N 128.0 E) in July
@pytest.mark.parametrize("i, j, month", [(1496, 80, 1), (1600, 240, 7)])
def test_shipped_downscaler_beats_bicubic(i, j, month):
    torch.set_num_threads(1)
    crop = held_out_crop(i, j, month)
    truth = crop.linke_turbidity.values[0]
    coarse = coarsen(crop[["linke_turbidity"]], 8)
    model = Downscaler.from_pretrained(device="cpu")
    ens = model.predict(coarse, static=crop, members=16, seed=0).linke_turbidity.values[:, 0]   # (M, H, W)
    bicubic = F.interpolate(torch.from_numpy(coarse.linke_turbidity.values[:1].astype(np.float32))[None],
                            scale_factor=8, mode="bicubic", align_corners=False)[0].numpy()
    assert metrics.rmse_of_mean(ens[:, None], truth[None]) < metrics.rmse_of_mean(bicubic[:, None], truth[None])
    assert np.std(ens, axis=0).mean() > 0

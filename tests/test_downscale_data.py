"""science.downscale.data: the torch block mean against the xarray coarsening, bilinear upsampling, patches
(shapes, alignment, NaN handling, determinism), the standardisation; and conditioning on the state's grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from science.downscale.data import FieldPatches, Standardiser, arrays, block_mean, upsample
from science.downscale.fields import coarsen
from shared.denoiser import on_backbone_grid


def field(rng, t=3, h=20, w=26, nan=True) -> xr.Dataset:
    x = rng.normal(size=(t, h, w)).astype(np.float32)
    if nan:
        x[:, :4, :4] = np.nan                 # a whole 4 x 4 block of NaN
        x[:, 5, 7] = np.nan                   # one NaN inside a block
    return xr.Dataset({"v": (("time", "lat", "lon"), x), "alt": (("lat", "lon"), rng.normal(size=(h, w)))},
                      coords={"lat": np.linspace(-10, 10, h), "lon": np.linspace(0, 30, w), "time": np.arange(t)})


def test_block_mean_matches_xarray_coarsen(rng):
    ds = field(rng)
    ours = block_mean(torch.from_numpy(ds.v.values), 4).numpy()
    theirs = coarsen(ds, 4, dims=("lat", "lon")).v.values
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, equal_nan=True)
    assert np.isnan(ours[:, 0, 0]).all() and np.isfinite(ours[:, 1, 1]).all()


def test_upsample_keeps_constants_and_block_means(rng):
    c = torch.full((2, 3, 4), 2.5)
    np.testing.assert_allclose(upsample(c, 4).numpy(), 2.5)
    assert upsample(c, 4).shape == (2, 12, 16)
    ramp = torch.arange(5.0).expand(5, 5).clone()                  # linear in the column index
    fine = upsample(ramp, 2)
    np.testing.assert_allclose(fine[2, 2:8].numpy(), [0.75, 1.25, 1.75, 2.25, 2.75, 3.25], atol=1e-6)
    assert torch.isfinite(upsample(torch.tensor([[np.nan, 1.0]]), 2)).all()


def test_patches_are_aligned_deterministic_and_fill_nan(rng):
    ds = field(rng, h=24, w=32)
    fine, static = arrays(ds, "v", ["alt"])
    patches = FieldPatches(fine, static, factor=4, patch=8, size=50, mask_channel=True, seed=3)
    items = [patches[i] for i in range(50)]
    assert items[0]["x0"].shape == (1, 8, 8) and items[0]["y"].shape == (1, 8, 8) and items[0]["cond"].shape == (2, 8, 8)
    for item in items:
        assert torch.isfinite(item["x0"]).all() and torch.isfinite(item["y"]).all()
        nan = item["cond"][1] > 0
        torch.testing.assert_close(item["x0"][0][nan], item["y"][0][nan])   # filled with y where NaN
    assert any(bool((it["cond"][1] > 0).any()) for it in items)
    torch.testing.assert_close(patches[7]["x0"], items[7]["x0"])            # a pure function of (seed, epoch, i)
    patches.epoch = 1
    assert not torch.equal(patches[7]["x0"], items[7]["x0"])
    # the block mean of a patch's x0 (where observed) is the coarse value its y was interpolated from
    whole = block_mean(torch.from_numpy(fine), 4)
    i = next(k for k in range(50) if not (items[k]["cond"][1] > 0).any())
    coarse = block_mean(items[i]["x0"][0], 4)
    assert any(torch.allclose(coarse, whole[t, a:a + 2, b:b + 2], atol=1e-6)
               for t in range(3) for a in range(5) for b in range(7))


def test_patch_errors(rng):
    fine = rng.normal(size=(1, 10, 10)).astype(np.float32)
    with pytest.raises(ValueError, match="not a multiple of the factor"):
        FieldPatches(fine, None, factor=4, patch=6, size=1, mask_channel=False)
    with pytest.raises(ValueError, match="smaller than the 12 x 12 training patch"):
        FieldPatches(fine, None, factor=4, patch=12, size=1, mask_channel=False)


def test_standardiser_round_trip(rng):
    fine = rng.normal(3.0, 2.0, size=(4, 8, 8))
    fine[0, 0, 0] = np.nan
    norm = Standardiser.fit(fine, rng.normal(100.0, 10.0, size=(1, 8, 8)))
    assert norm.mean == pytest.approx(np.nanmean(fine)) and norm.std == pytest.approx(np.nanstd(fine))
    assert Standardiser.from_dict(norm.to_dict()) == norm
    with pytest.raises(ValueError, match="NaN everywhere"):
        Standardiser.fit(np.full((2, 2), np.nan))


def test_conditioning_on_the_state_grid_is_unshuffled():
    cond = torch.randn(2, 3, 8, 8)
    assert on_backbone_grid(cond, (8, 8), 4).shape == (2, 48, 2, 2)
    assert on_backbone_grid(cond, (32, 32), 4) is cond                      # already on the backbone grid
    assert on_backbone_grid(cond, (8, 8), 1) is cond

"""shared.tiling.tiled_denoiser: sampling a large grid tile by tile with noise drawn once for the whole grid
keeps the ensemble's spread in the tiles' overlaps (issue 15), and equals the untiled run for a local model."""

from __future__ import annotations

import torch

from shared.processes import ResShiftScheduler
from shared.samplers import sample
from shared.tiling import tile_starts, tiled_denoiser


def local_denoiser(x_t, t, y, cond):
    """A pointwise model: ``x0_hat = y + 0.5 (x_t - y) + 0.1 cond`` (no spatial context)."""
    return y + 0.5 * (x_t - y) + 0.1 * cond[:, :1]


def run(tile, members=64, size=48):
    process = ResShiftScheduler(num_train_timesteps=4, kappa=1.0, min_noise_level=0.2, etas_end=0.99, power=0.3)
    y = torch.linspace(-1, 1, size).expand(members, 1, size, size).clone()
    cond = torch.ones(members, 1, size, size)
    generators = [torch.Generator().manual_seed(k) for k in range(members)]
    denoise = tiled_denoiser(local_denoiser, y, cond, tile, overlap=8)
    return sample(denoise, process, y, generator=generators)[0]


def test_tiled_equals_untiled_for_a_local_model():
    torch.testing.assert_close(run(16), run(None), rtol=1e-5, atol=1e-5)


def test_spread_is_the_same_in_tile_interiors_and_overlaps():
    out = run(16, members=256)
    spread = out.std(dim=0)[0]                                     # (H, W) ensemble spread per cell
    starts = tile_starts(48, 16, 8)
    overlap = torch.zeros(48, dtype=torch.bool)
    for a, b in zip(starts[:-1], starts[1:]):
        overlap[b:a + 16] = True                                   # rows / columns two tiles share
    in_overlap = overlap[:, None] | overlap[None, :]
    ratio = float(spread[in_overlap].mean() / spread[~in_overlap].mean())
    assert in_overlap.any() and (~in_overlap).any()
    assert abs(ratio - 1) < 0.03, ratio

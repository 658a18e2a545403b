"""Gaussian-blended tiling."""

import pytest
import torch
import torch.nn.functional as F

from shared.tiling import balanced_tile, count_tiles, gaussian_window, tile_starts, tiled_apply


def test_tile_starts_cover_and_overlap():
    for length, tile, overlap in [(100, 32, 8), (33, 32, 8), (32, 32, 4), (10, 32, 4), (257, 64, 16)]:
        starts = tile_starts(length, tile, overlap)
        covered = torch.zeros(length, dtype=torch.bool)
        for s in starts:
            covered[s:s + tile] = True
        assert covered.all()
        assert starts[0] == 0 and starts[-1] + min(tile, length) == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError):
        tile_starts(100, 32, 32)


def test_window_is_positive_and_peaks_at_centre():
    w = gaussian_window(9, 7)
    assert w.min() > 0 and w[4, 3] == pytest.approx(1.0)


def test_pointwise_function_is_exact_everywhere():
    x = torch.rand(1, 3, 37, 53)
    fn = lambda t: F.interpolate(t, scale_factor=4, mode="nearest") * 2 + 1  # noqa: E731
    out = tiled_apply(fn, x, tile=16, overlap=4, scale=4)
    torch.testing.assert_close(out, fn(x))


def test_local_function_matches_away_from_tile_seams():
    """A 3x3 convolution differs from the untiled result only within 1 px of a tile edge."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        full = conv(x)
        tiled = tiled_apply(conv, x, tile=16, overlap=8, scale=1)
    err = (full - tiled).abs().amax(1)[0]
    # every pixel is at least 2 px inside some tile; blended errors stay small and are local
    assert err.max() < 0.5
    starts = tile_starts(40, 16, 8)
    edges = {s for s in starts} | {s + 15 for s in starts}
    safe = torch.ones(40, dtype=torch.bool)
    for e in edges:
        safe[max(0, e - 1):e + 2] = False
    # rows and cols away from every tile edge are exact
    assert err[safe][:, safe].max() < 1e-5


def test_untiled_when_tile_covers_input():
    calls = []
    fn = lambda t: (calls.append(t.shape), t)[1]  # noqa: E731
    tiled_apply(fn, torch.rand(1, 1, 8, 8), tile=16)
    assert calls == [torch.Size([1, 1, 8, 8])] and count_tiles(8, 8, 16, 4) == 1


@pytest.mark.parametrize("length", [100, 512, 513, 576, 1000, 4700])
def test_balanced_tile_keeps_the_tile_count_and_covers(length):
    b = balanced_tile(length, 512, 64, 16)
    assert b % 16 == 0 and b <= 512
    starts = tile_starts(length, b, 64)
    assert len(starts) == len(tile_starts(length, 512, 64))
    assert starts[0] == 0 and starts[-1] + min(b, length) >= length
    if length == 576:
        assert b == 320   # two 320-frame chunks instead of two 512-frame ones

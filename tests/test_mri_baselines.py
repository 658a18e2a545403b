"""Zero-filled and compressed-sensing baselines (restore.mri.baselines) on a Shepp-Logan phantom."""

from __future__ import annotations

import numpy as np
import pytest
import torch

sp = pytest.importorskip("sigpy")
mr = pytest.importorskip("sigpy.mri")

from restore.mri.baselines import compressed_sensing, zero_filled  # noqa: E402
from restore.mri.fourier import cartesian_measurement, fft2c  # noqa: E402
from restore.mri.masks import column_mask  # noqa: E402
from shared.complex import channels_to_complex  # noqa: E402

N = 96


@pytest.fixture(scope="module")
def phantom():
    return sp.shepp_logan((N, N)).astype(np.complex64)


def psnr(x, truth) -> float:
    a, b = np.abs(x), np.abs(truth)
    return float(20 * np.log10(b.max() / np.sqrt(((a - b) ** 2).mean())))


def acquire(image, maps=None, seed=0):
    mask = column_mask(N, 4, "random", seed=seed).numpy()
    coil_images = image if maps is None else maps * image
    return sp.fft(coil_images, axes=(-2, -1)).astype(np.complex64) * mask, mask


def test_zero_filled_is_the_measurement_adjoint(phantom):
    maps = mr.birdcage_maps((4, N, N)).astype(np.complex64)
    maps /= np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    k, mask = acquire(phantom, maps)
    m = cartesian_measurement(torch.from_numpy(k)[None], torch.from_numpy(mask), torch.from_numpy(maps)[None])
    ours = channels_to_complex(m.adjoint(m.measured))[0, 0].numpy()
    np.testing.assert_allclose(zero_filled(k, mask, maps), ours, atol=1e-5)
    np.testing.assert_allclose(sp.fft(phantom, axes=(-2, -1)), fft2c(torch.from_numpy(phantom)).numpy(), atol=1e-5)


@pytest.mark.parametrize("method, lam, gain", [("l1-wavelet", 1e-3, 1.0), ("total-variation", 1e-2, 8.0)])
def test_compressed_sensing_beats_zero_filled(phantom, method, lam, gain):
    """On the piecewise-constant phantom (its own lambda; the defaults are tuned on brain slices)."""
    k, mask = acquire(phantom)
    zf = psnr(zero_filled(k, mask), phantom)
    assert psnr(compressed_sensing(k, mask, method=method, lam=lam), phantom) > zf + gain


def test_scanner_scale_does_not_change_the_result(phantom):
    """Raw scanner k-space is ~1e-5: the same reconstruction, at the input's scale."""
    k, mask = acquire(phantom)
    ref = compressed_sensing(k, mask, method="total-variation", iterations=30)
    small = compressed_sensing(k * 1e-5, mask, method="total-variation", iterations=30)
    np.testing.assert_allclose(small, ref * 1e-5, atol=1e-3 * 1e-5 * np.abs(ref).max())


def test_bad_arguments_are_clear(phantom):
    k, mask = acquire(phantom)
    with pytest.raises(ValueError, match="unknown compressed-sensing method"):
        compressed_sensing(k, mask, method="lasso")
    with pytest.raises(ValueError, match="give maps"):
        zero_filled(k[None], mask)

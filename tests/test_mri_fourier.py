"""The Cartesian MRI measurement (restore.mri.fourier) and seeded fastMRI masks (restore.mri.masks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restore.mri.fourier import cartesian_measurement, fft2c, ifft2c
from restore.mri.masks import column_mask
from shared.complex import channels_to_complex, complex_to_channels
from shared.data_consistency import project


def complex_randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g))


def smooth_maps(coils: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Smooth complex coil sensitivities normalised so that ``sum_c |S_c|^2 = 1``."""
    coarse = complex_randn(1, coils, 4, 4, seed=seed)
    up = torch.nn.functional.interpolate(torch.view_as_real(coarse[0]).permute(0, 3, 1, 2), size=(h, w),
                                         mode="bilinear", align_corners=True).permute(0, 2, 3, 1).contiguous()
    maps = torch.view_as_complex(up)[None] + 0.1
    return maps / maps.abs().square().sum(1, keepdim=True).sqrt()


def test_fft2c_round_trip_parseval_and_centred_numpy():
    x = complex_randn(2, 12, 10)
    k = fft2c(x)
    torch.testing.assert_close(ifft2c(k), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(k.abs().square().sum(), x.abs().square().sum(), rtol=1e-5, atol=0)
    ref = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(k.numpy(), ref, atol=1e-5)


@pytest.mark.parametrize("kind", ["random", "equispaced"])
@pytest.mark.parametrize("acceleration", [4, 8])
def test_masks_are_seeded_and_keep_the_centre(kind, acceleration):
    a = column_mask(128, acceleration, kind, seed=3)
    assert torch.equal(a, column_mask(128, acceleration, kind, seed=3))
    assert a.shape == (128,) and set(a.unique().tolist()) <= {0.0, 1.0}
    centre = round(128 * {4: 0.08, 8: 0.04}[acceleration])
    assert a[64 - centre // 2:64 + centre // 2].all()
    assert abs(a.mean().item() - 1 / acceleration) < 0.1
    with pytest.raises(ValueError, match="center_fraction"):
        column_mask(128, 6, kind)


def adjoint_gap(m, x, k) -> float:
    """``Re <A x, k> - <x, A^H k>``: zero for a true adjoint."""
    lhs = (m.forward(x) * k.conj()).sum().real
    rhs = (x * m.adjoint(k)).sum()
    return float((lhs - rhs).abs() / lhs.abs())


def test_single_and_multi_coil_adjoints():
    h, w = 16, 12
    mask = column_mask(w, 4, seed=0)
    x = complex_to_channels(complex_randn(2, 1, h, w, seed=1))
    single = cartesian_measurement(complex_randn(2, h, w, seed=2), mask)
    assert adjoint_gap(single, x, complex_randn(2, h, w, seed=3)) < 1e-5
    maps = smooth_maps(4, h, w).expand(2, -1, -1, -1)
    multi = cartesian_measurement(complex_randn(2, 4, h, w, seed=4), mask, maps)
    assert adjoint_gap(multi, x, complex_randn(2, 4, h, w, seed=5)) < 1e-5


def test_fully_sampled_sense_round_trip_is_the_identity():
    """With ``sum_c |S_c|^2 = 1`` and every column measured, ``A^H A x = x``."""
    h, w = 16, 12
    maps = smooth_maps(6, h, w)
    m = cartesian_measurement(torch.zeros(1, 6, h, w, dtype=torch.complex64), torch.ones(w), maps)
    x = complex_to_channels(complex_randn(1, 1, h, w, seed=6))
    torch.testing.assert_close(m.adjoint(m.forward(x)), x, atol=1e-5, rtol=0)


def test_hard_dc_is_exact_on_the_measured_columns_and_keeps_the_others():
    h, w = 32, 24
    truth = complex_randn(1, h, w, seed=7)
    mask = column_mask(w, 4, "equispaced", seed=1)
    m = cartesian_measurement(fft2c(truth), mask)
    x = complex_to_channels(complex_randn(1, 1, h, w, seed=8))
    p = project(x, m)
    assert m.residual(p).max() < 1e-5
    k_x, k_p = fft2c(channels_to_complex(x)[:, 0]), fft2c(channels_to_complex(p)[:, 0])
    torch.testing.assert_close((1 - mask) * k_p, (1 - mask) * k_x, atol=1e-5, rtol=0)
    torch.testing.assert_close(mask * k_p, m.measured, atol=1e-5, rtol=0)
    zero_filled = m.adjoint(m.measured)   # A^H y: measured columns only
    torch.testing.assert_close(fft2c(channels_to_complex(zero_filled)[:, 0]), m.measured, atol=1e-5, rtol=0)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="single-coil"):
        cartesian_measurement(torch.zeros(2, 3, 8, 8, dtype=torch.complex64), torch.ones(8))
    with pytest.raises(ValueError, match="coil maps"):
        cartesian_measurement(torch.zeros(1, 3, 8, 8, dtype=torch.complex64), torch.ones(8),
                              torch.ones(1, 2, 8, 8, dtype=torch.complex64))

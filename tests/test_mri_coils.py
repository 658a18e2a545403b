"""ESPIRiT coil maps (restore.mri.coils): the calibration width and the maps' quality on a phantom."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from restore.mri.coils import MIN_CALIB, centre_lines, espirit_maps
from restore.mri.fourier import ifft2c
from restore.mri.simulate import simulate

pytest.importorskip("sigpy")


@pytest.mark.parametrize("measured, expected", [
    (slice(8, 13), 5), (slice(0, 20), 20), (slice(10, 11), 1), (slice(0, 0), 0), (slice(0, 12), 12)])
def test_centre_lines(measured, expected):
    mask = np.zeros(20)
    mask[measured] = 1
    assert centre_lines(mask) == expected


@pytest.mark.parametrize("acceleration, kind", [(4, "random"), (8, "equispaced")])
def test_espirit_maps_combine_the_coils_like_the_true_maps(acceleration, kind):
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    phantom = resize(shepp_logan_phantom(), (96, 80), anti_aliasing=True).astype(np.float32)
    acq = simulate(phantom, acceleration=acceleration, mask=kind, coils=8, seed=3)
    assert centre_lines(acq.mask.numpy()) < MIN_CALIB          # the fallback width is the one in use
    maps = torch.from_numpy(espirit_maps(acq.measured.numpy(), acq.mask.numpy()))
    combined = (maps.conj() * ifft2c(acq.kspace)).sum(0).abs()  # fully sampled coils, estimated maps
    target = acq.target.abs()
    inside = target > 0.05
    error = (combined - target)[inside].square().mean().sqrt()
    assert 20 * torch.log10(target.max() / error) > 40


def test_missing_sigpy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sigpy.mri.app", None)
    with pytest.raises(ImportError, match=r"fastdiff-suite\[mri\]"):
        espirit_maps(np.zeros((2, 16, 16), np.complex64), np.ones(16))


def test_rank_is_checked():
    with pytest.raises(ValueError, match="coils, H, W"):
        espirit_maps(np.zeros((16, 16), np.complex64), np.ones(16))

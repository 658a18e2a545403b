"""The MRI training pairs (restore.mri.data) and the magnitude PSNR used in validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("nibabel")
pytest.importorskip("sigpy")

from restore.mri import volumes  # noqa: E402
from restore.mri.data import SimulatedSlices, as_item, crop, slice_scale  # noqa: E402
from restore.mri.metrics import magnitude, psnr_magnitude  # noqa: E402
from restore.mri.simulate import simulate  # noqa: E402
from shared.complex import channels_to_complex  # noqa: E402

needs_volumes = pytest.mark.skipif(not volumes.split_names("train"), reason="no MR volumes: run `make data`")


def phantom(h=40, w=32):
    yy, xx = np.mgrid[:h, :w]
    return ((yy - h / 2) ** 2 / (h / 3) ** 2 + (xx - w / 2) ** 2 / (w / 3) ** 2 < 1).astype(np.float32)


def test_item_is_normalised_by_the_zero_filled_peak():
    acq = simulate(phantom(), acceleration=4, seed=0)
    item = as_item(acq)
    assert item["x0"].shape == (2, 40, 32) and item["y"].shape == (2, 40, 32) and item["cond"].shape == (1, 40, 32)
    assert magnitude(item["y"][None]).max() == pytest.approx(1.0, abs=1e-6)
    s = slice_scale(acq.zero_filled())
    torch.testing.assert_close(channels_to_complex(item["x0"][None])[0, 0], acq.target / s)
    assert torch.equal(item["cond"][0, 0], acq.mask)     # the measured columns, on every row
    # scanner scale does not matter: the same item from k-space x 1e-5
    small = simulate(phantom() * 1e-5, acceleration=4, seed=0)
    torch.testing.assert_close(as_item(small)["y"], item["y"], atol=1e-5, rtol=0)


def test_crop_is_a_window_of_the_image():
    image = np.arange(40 * 32, dtype=np.float32).reshape(40, 32)
    part = crop(image, 16, np.random.default_rng(0))
    assert part.shape == (16, 16)
    top, left = divmod(int(part[0, 0]), 32)
    np.testing.assert_array_equal(part, image[top:top + 16, left:left + 16])
    assert crop(image[:8], 16, np.random.default_rng(0)).shape == (8, 16)      # a smaller axis stays whole


def test_psnr_magnitude_closed_form():
    target = torch.zeros(1, 2, 4, 4)
    target[:, 0] = 2.0
    estimate = target.clone()
    estimate[:, 0, 0, 0] = 1.0                      # one pixel off by 1: mse 1/16, peak 2
    assert float(psnr_magnitude(estimate, target)) == pytest.approx(10 * np.log10(4 * 16), abs=1e-4)


@needs_volumes
def test_training_items_are_reproducible_patches():
    data = SimulatedSlices("train", patch_size=32, length=4, seed=0)
    a, b = data[2], data[2]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert a["x0"].shape == (2, 32, 32) and a["cond"].shape == (1, 32, 32)
    assert not torch.equal(data[3]["x0"], a["x0"])


@needs_volumes
def test_training_patches_are_acquisitions_of_the_window():
    """The patch is what a scanner acquires of the window alone: its zero-filled image is exactly the
    adjoint of its own masked k-space, with no aliasing folded in from outside the window."""
    from restore.mri.fourier import fft2c, ifft2c

    item = SimulatedSlices("train", patch_size=32, length=4, seed=0, p_noise=0.0, p_multicoil=0.0)[1]
    x0, y = (channels_to_complex(item[k][None])[0, 0] for k in ("x0", "y"))
    mask = item["cond"][0, 0]
    torch.testing.assert_close(y, ifft2c(fft2c(x0) * mask), atol=1e-5, rtol=0)

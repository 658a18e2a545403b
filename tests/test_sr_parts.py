"""SR building blocks: metrics, colour fixes, degradations, image conversions."""

import numpy as np
import pytest
import torch
from PIL import Image

from restore.sr.colorfix import adain, color_fix, wavelet, wavelet_low
from restore.sr.degradations import bicubic_down, bicubic_up, degrade, gaussian_kernel, jpeg
from restore.sr.images import array_to_planes, from_user, planes_to_array, to_user
from restore.sr.metrics import psnr_y, rgb_to_y, ssim_y


def test_y_channel_and_psnr_closed_form():
    white = torch.ones(3, 8, 8)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0)
    assert rgb_to_y(torch.zeros(3, 8, 8))[0, 0] == pytest.approx(16.0)
    a = torch.full((3, 32, 32), 0.5)
    b = a + 1.0 / 219.0  # Y moves by exactly 1 grey level -> MSE 1 -> PSNR = 20 log10(255)
    assert psnr_y(b, a, border=4) == pytest.approx(20 * np.log10(255.0), abs=1e-3)
    assert psnr_y(a, a) == float("inf")
    assert ssim_y(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        psnr_y(a, torch.zeros(3, 8, 8))


def test_adain_matches_statistics_and_wavelet_swaps_low_band():
    g = torch.Generator().manual_seed(0)
    x, ref = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g) * 0.3 + 0.5
    out = adain(x, ref)
    torch.testing.assert_close(out.mean((-2, -1)), ref.mean((-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std((-2, -1)), ref.std((-2, -1)), atol=1e-4, rtol=0)
    w = wavelet(x, ref)
    torch.testing.assert_close(w - wavelet_low(x), x - wavelet_low(x) + wavelet_low(ref) - wavelet_low(x))
    assert color_fix(x, x, "wavelet").sub(x).abs().max() < 1e-5  # fixing against itself changes nothing
    with pytest.raises(ValueError):
        color_fix(x, ref, "sepia")


def test_degradations_shapes_range_and_seeding():
    img = torch.rand(3, 64, 48)
    assert bicubic_down(img, 4).shape == (3, 16, 12)
    assert bicubic_up(bicubic_down(img, 4), 4).shape == (3, 64, 48)
    a = degrade(img, 4, "realistic", np.random.default_rng(3))
    b = degrade(img, 4, "realistic", np.random.default_rng(3))
    assert a.shape == (3, 16, 12) and a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b)
    k = gaussian_kernel(np.random.default_rng(0))
    assert k.sum() == pytest.approx(1.0, abs=1e-5) and (k >= 0).all()
    smooth = bicubic_up(bicubic_down(img, 8), 8)
    assert (jpeg(smooth, 90) - smooth).abs().mean() < 0.02
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(img, 4, "fog", np.random.default_rng(0))


def test_bicubic_upsampling_of_smooth_image_is_accurate():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 128), indexing="ij")
    img = torch.stack([0.5 + 0.3 * torch.sin(3 * xx), 0.5 + 0.3 * torch.cos(2 * yy), 0.4 + 0.2 * xx * yy])
    assert psnr_y(bicubic_up(bicubic_down(img, 4), 4).clamp(0, 1), img) > 40


@pytest.mark.parametrize("arr", [
    np.arange(12, dtype=np.uint8).reshape(3, 4),
    np.arange(36, dtype=np.uint8).reshape(3, 4, 3),
    np.arange(48, dtype=np.uint8).reshape(3, 4, 4),
    (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4),
    np.arange(24, dtype=np.uint8).reshape(3, 4, 2),
])
def test_array_planes_round_trip(arr):
    back = planes_to_array(array_to_planes(arr))
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_user_kinds_round_trip():
    arr = (np.random.default_rng(0).random((5, 6, 3)) * 255).astype(np.uint8)
    for image in (arr, Image.fromarray(arr), Image.fromarray(arr).convert("RGBA"),
                  torch.from_numpy(arr).permute(2, 0, 1).float() / 255):
        planes, kind, info = from_user(image)
        back = to_user(planes, kind, info)
        assert type(back) is type(image)
        if isinstance(image, Image.Image):
            assert back.mode == image.mode

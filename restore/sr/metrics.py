"""Super-resolution metrics as reported in the SR literature: PSNR and SSIM on the Y channel.

``Y = 16 + (65.481 R + 128.553 G + 24.966 B)`` for RGB in [0, 1] (ITU-R BT.601, [16, 235] range);
a border of ``scale`` pixels is cropped before measuring. SSIM follows Wang et al. (Gaussian
window, sigma 1.5) via scikit-image.
"""

from __future__ import annotations

import numpy as np
import torch


def _as_hwc(img) -> np.ndarray:
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().float()
        img = img[0] if img.ndim == 4 else img
        img = img.permute(1, 2, 0).numpy()
    img = np.asarray(img)
    if img.dtype == np.uint8:
        img = img.astype(np.float64) / 255.0
    return img.astype(np.float64)


def rgb_to_y(img) -> np.ndarray:
    """Luma ``Y`` in [16, 235] of an RGB image in [0, 1] (``(H,W,3)`` array or ``(3,H,W)`` tensor)."""
    x = _as_hwc(img)
    if x.ndim == 2:
        return 16.0 + 219.0 * x
    return 16.0 + x[..., 0] * 65.481 + x[..., 1] * 128.553 + x[..., 2] * 24.966


def _crop(a: np.ndarray, border: int) -> np.ndarray:
    return a[border:-border, border:-border] if border else a


def psnr_y(pred, target, border: int = 4) -> float:
    """PSNR (dB) on the Y channel, peak 255, ``border`` pixels cropped."""
    a, b = _crop(rgb_to_y(pred), border), _crop(rgb_to_y(target), border)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim_y(pred, target, border: int = 4) -> float:
    """SSIM on the Y channel (Gaussian window, sigma 1.5, data range 255), ``border`` cropped."""
    from skimage.metrics import structural_similarity

    a, b = _crop(rgb_to_y(pred), border), _crop(rgb_to_y(target), border)
    return float(structural_similarity(a, b, data_range=255.0, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False))


def psnr_state(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Batch PSNR (dB) of model states in [-1, 1], mapped to [0, 1] and clamped (validation metric)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    to01 = lambda v: ((v + 1) / 2).clamp(0, 1)  # noqa: E731
    return peak_signal_noise_ratio(to01(estimate), to01(target), data_range=1.0)

"""Image-quality metrics on the model's two-channel complex states (validation during training).

The benchmark uses ``fastmri.evaluate`` (NMSE, PSNR, SSIM on magnitude volumes); during training
the same PSNR is taken on the magnitudes of the batch: ``|x| = sqrt(x_re^2 + x_im^2)``, with the
target's peak magnitude as the data range (fastMRI's ``maxval = gt.max()``).
"""

from __future__ import annotations

import torch


def magnitude(state: torch.Tensor) -> torch.Tensor:
    """``(B, 2, H, W)`` (real, imaginary) -> ``(B, 1, H, W)`` magnitude."""
    return state.float().square().sum(1, keepdim=True).sqrt()


def psnr_magnitude(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of the magnitude images, data range = the target's peak magnitude."""
    est, ref = magnitude(estimate), magnitude(target)
    mse = (est - ref).square().mean()
    return 10 * torch.log10(ref.max().square() / mse.clamp_min(1e-20))

"""Colour correction of a restored image against its (upsampled) input.

Generative restoration can drift in colour; these fixes take the colour from the input and the
detail from the model output (both ``(B, 3, H, W)`` in [0, 1]):

* ``adain``:   ``out = (x - mu_x) / sd_x * sd_ref + mu_ref`` per image and channel.
* ``wavelet``: ``out = high(x) + low(ref)`` with an a-trous wavelet split
  ``low = B_16 * ... * B_2 * B_1 * img`` (B_d: 3x3 binomial blur with dilation d), as in
  StableSR/ResShift inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .options import COLOR_FIXES


def adain(x: torch.Tensor, ref: torch.Tensor, eps: float = 1e-5, inplace: bool = False) -> torch.Tensor:
    """Match per-channel mean and standard deviation of ``x`` to ``ref`` (overwriting ``x`` if ``inplace``)."""
    mx, sx = x.mean((-2, -1), keepdim=True), x.std((-2, -1), keepdim=True)
    mr, sr = ref.mean((-2, -1), keepdim=True), ref.std((-2, -1), keepdim=True)
    out = x if inplace else x.clone()
    return out.sub_(mx).div_(sx + eps).mul_(sr).add_(mr)


def _blur(x: torch.Tensor, dilation: int) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device, dtype=x.dtype)
    k = (k[:, None] * k[None, :]) / 16.0
    k = k.expand(x.shape[1], 1, 3, 3)
    pad = dilation
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.conv2d(F.pad(x, (pad,) * 4, mode=mode), k, groups=x.shape[1], dilation=dilation)


def wavelet_low(x: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """Low-frequency part after ``levels`` a-trous blurs (dilations 1, 2, 4, ...)."""
    low = x
    for i in range(levels):
        low = _blur(low, 2**i)
    return low


def wavelet(x: torch.Tensor, ref: torch.Tensor, levels: int = 5) -> torch.Tensor:
    """``high(x) + low(ref)``: detail of ``x`` with the colours of ``ref``."""
    return x - wavelet_low(x, levels) + wavelet_low(ref, levels)


def color_fix(x: torch.Tensor, ref: torch.Tensor, method: str, inplace: bool = False) -> torch.Tensor:
    """Apply ``method`` ("none", "adain" or "wavelet") and clamp to [0, 1]; ``inplace`` lets
    "none" and "adain" overwrite ``x`` instead of allocating another full-size image."""
    if method == "none":
        return x.clamp_(0, 1) if inplace else x.clamp(0, 1)
    if method == "adain":
        return adain(x, ref, inplace=inplace).clamp_(0, 1)
    if method == "wavelet":
        return wavelet(x, ref).clamp(0, 1)
    raise ValueError(f"unknown colour fix {method!r}; choose from {COLOR_FIXES}")

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


class ChannelStats:
    """Running per-channel mean and (unbiased) standard deviation over the last two axes of the
    tensors given to :meth:`update` (bands of one image, ``(..., C, h, W)``), summed in float64::

        mean = S1 / N,   std = sqrt((S2 - S1^2 / N) / (N - 1)),   S1 = sum x,  S2 = sum x^2
    """

    def __init__(self):
        self.s1 = self.s2 = None
        self.n = 0

    def update(self, x: torch.Tensor, rows: int = 16) -> "ChannelStats":
        """Add the pixels of ``x``, ``rows`` rows at a time (float64 copies of a few rows only)."""
        for part in x.split(rows, dim=-2):
            part = part.double()
            s1, s2 = part.sum((-2, -1)), part.square_().sum((-2, -1))
            self.s1 = s1 if self.s1 is None else self.s1 + s1
            self.s2 = s2 if self.s2 is None else self.s2 + s2
        self.n += x.shape[-2] * x.shape[-1]
        return self

    @property
    def mean(self) -> torch.Tensor:
        """``(..., C, 1, 1)`` float32."""
        return (self.s1 / self.n).float()[..., None, None]

    @property
    def std(self) -> torch.Tensor:
        """``(..., C, 1, 1)`` float32."""
        var = (self.s2 - self.s1.square() / self.n) / max(1, self.n - 1)
        return var.clamp_min(0).sqrt().float()[..., None, None]


def adain_apply(x: torch.Tensor, stats: ChannelStats, ref: ChannelStats, eps: float = 1e-5) -> torch.Tensor:
    """``(x - mu_x) / (sd_x + eps) * sd_ref + mu_ref`` in place, with the statistics given (so
    ``x`` may be one band of the image they were taken over)."""
    return x.sub_(stats.mean.to(x.device)).div_(stats.std.to(x.device) + eps).mul_(ref.std.to(x.device)) \
        .add_(ref.mean.to(x.device))


def adain(x: torch.Tensor, ref: torch.Tensor, eps: float = 1e-5, inplace: bool = False) -> torch.Tensor:
    """Match per-channel mean and standard deviation of ``x`` to ``ref`` (overwriting ``x`` if ``inplace``)."""
    stats, ref_stats = ChannelStats().update(x), ChannelStats().update(ref)
    return adain_apply(x if inplace else x.clone(), stats, ref_stats, eps)


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


def wavelet_halo(levels: int = 5) -> int:
    """Rows each side that :func:`wavelet_low` reads: ``1 + 2 + ... + 2^(levels-1)``."""
    return 2**levels - 1


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

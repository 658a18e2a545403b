"""Training losses specific to images."""

from __future__ import annotations

import torch


def frequency_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Log-amplitude spectrum distance ``mean |log(1+|F a|) - log(1+|F b|)|`` (2-D FFT per channel).

    The log compresses the dominant low frequencies, so fine detail (edges, texture) counts:
    a perceptual signal that needs no pretrained network.
    """
    fa = torch.fft.rfft2(a.float(), norm="ortho").abs()
    fb = torch.fft.rfft2(b.float(), norm="ortho").abs()
    return torch.mean(torch.abs(torch.log1p(fa) - torch.log1p(fb)))

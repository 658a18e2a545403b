"""Complex data as real channels, for networks and processes that work on real tensors.

A complex tensor ``(B, C, ...)`` becomes ``(B, 2C, ...)`` real with the real and imaginary parts
of each channel next to each other (``c0.re, c0.im, c1.re, c1.im, ...``), and back::

    x = complex_to_channels(z)      # einops: "b c ... two -> b (c two) ..."
    z = channels_to_complex(x)      # the inverse, exactly
"""

from __future__ import annotations

import torch
from einops import rearrange


def complex_to_channels(z: torch.Tensor) -> torch.Tensor:
    """``(B, C, ...)`` complex -> ``(B, 2C, ...)`` real (real and imaginary parts interleaved)."""
    if not z.is_complex():
        raise ValueError(f"expected a complex tensor, got {z.dtype}")
    return rearrange(torch.view_as_real(z), "b c ... two -> b (c two) ...")


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """``(B, 2C, ...)`` real -> ``(B, C, ...)`` complex; the inverse of :func:`complex_to_channels`."""
    if x.is_complex() or x.shape[1] % 2:
        raise ValueError(f"expected a real tensor with an even channel count, got {x.dtype} {tuple(x.shape)}")
    return torch.view_as_complex(rearrange(x, "b (c two) ... -> b c ... two", two=2).contiguous())


def pair_magnitude(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``(B, 2C, ...)`` real channel pairs -> ``(B, C, ...)`` magnitudes ``sqrt(re^2 + im^2 + eps)``; the
    ``eps`` keeps the gradient ``x / |x|`` finite at zero."""
    if x.shape[1] % 2:
        raise ValueError(f"expected an even channel count, got {tuple(x.shape)}")
    pairs = rearrange(x, "b (c two) ... -> b c two ...", two=2)
    return torch.sqrt(pairs.pow(2).sum(dim=2) + eps)

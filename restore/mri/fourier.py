"""Cartesian MRI acquisition as a linear measurement: ``A x = M F S x``.

``x`` is the complex image as two real channels ``(B, 2, H, W)`` (:mod:`shared.complex`), the
state the diffusion processes work on. ``S`` multiplies by the coil sensitivities (multi-coil,
``sum_c |S_c|^2 = 1``; single-coil: none), ``F`` is fastMRI's centred orthonormal 2-D FFT
(:func:`fastmri.fft2c`, ``F^H F = I``) and ``M`` keeps the measured k-space columns (fastMRI masks
act along the last axis, the phase-encoding direction)::

    A x   = M * fft2c(S x)                      (B, [C,] H, W) complex k-space
    A^H k = sum_c conj(S_c) ifft2c(M * k_c)     (B, 2, H, W)

Single-coil, ``A = M F`` with ``F`` unitary, so hard data consistency
(:func:`shared.data_consistency.project`) is the exact projection ``F^H[(1 - M) F x + M y]``;
multi-coil it is SENSE-style data consistency, a gradient step. ``A^H y`` is the zero-filled
(coil-combined) image.
"""

from __future__ import annotations

from typing import Optional

import torch

from shared.complex import channels_to_complex, complex_to_channels
from shared.data_consistency import LinearMeasurement


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two axes of a complex tensor (fastMRI's ``fft2c``)."""
    import fastmri

    return torch.view_as_complex(fastmri.fft2c(torch.view_as_real(image).contiguous()))


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`fft2c` (fastMRI's ``ifft2c``)."""
    import fastmri

    return torch.view_as_complex(fastmri.ifft2c(torch.view_as_real(kspace).contiguous()))


def cartesian_measurement(kspace: torch.Tensor, mask: torch.Tensor,
                          maps: Optional[torch.Tensor] = None) -> LinearMeasurement:
    """The measurement of undersampled k-space ``kspace`` ``(B, H, W)`` (single-coil) or
    ``(B, C, H, W)`` with coil ``maps`` of the same shape; ``mask`` broadcasts against the last
    axis (``(W,)``: 1 where a column was measured). The data are ``mask * kspace``."""
    mask = mask.to(kspace.device, torch.float32)
    multi = maps is not None
    if multi and maps.shape != kspace.shape:
        raise ValueError(f"coil maps {tuple(maps.shape)} must match the k-space {tuple(kspace.shape)}")
    if not multi and kspace.ndim != 3:
        raise ValueError(f"single-coil k-space must be (B, H, W), got {tuple(kspace.shape)}")

    def forward(x: torch.Tensor) -> torch.Tensor:
        image = channels_to_complex(x)[:, 0]
        return mask * fft2c(maps * image[:, None] if multi else image)

    def adjoint(k: torch.Tensor) -> torch.Tensor:
        image = ifft2c(mask * k)
        if multi:
            image = (maps.conj() * image).sum(1)
        return complex_to_channels(image[:, None])

    return LinearMeasurement(forward, adjoint, mask * kspace)


def slice_scale(zero_filled: torch.Tensor) -> float:
    """``s = max |A^H y|``: the zero-filled image's peak magnitude (1 for an all-zero image). Models
    see k-space divided by it (training and inference alike), so any scanner scale works."""
    return float(zero_filled.abs().max()) or 1.0

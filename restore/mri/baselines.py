"""What clinical researchers use today, as baselines: zero-filled and compressed sensing (sigpy).

All take one slice of undersampled k-space ``kspace`` ``(H, W)`` (single-coil) or
``(coils, H, W)`` with coil ``maps`` of the same shape, and the column ``mask`` ``(W,)``, and
return the complex image ``(H, W)`` (numpy, complex64):

* :func:`zero_filled`: ``A^H y = sum_c conj(S_c) F^H (M y_c)`` (the coil-combined inverse FFT);
* :func:`compressed_sensing`: ``argmin_x 1/2 ||M F S x - y||^2 + lam R(x)`` with ``R`` the l1 norm
  of the Daubechies-4 wavelet coefficients (``"l1-wavelet"``, sigpy's FISTA) or total variation
  (``"total-variation"``, sigpy's ADMM: its default primal-dual solver is far from converged in a
  hundred iterations, as the issue notes). ``lam`` is relative to data scaled so that the
  zero-filled image peaks at 1 (the k-space is scaled by ``1 / s`` before and the image by ``s``
  after), so one ``lam`` serves any scanner scale.

sigpy's centred orthonormal FFT equals fastMRI's ``fft2c`` (to float rounding), so these share
the measurement model of :mod:`restore.mri.fourier`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

#: Regularisers of :func:`compressed_sensing` and their defaults ``(lam, iterations)``: lambda is the
#: best mean PSNR over 4x single-coil and 8x 8-coil training slices
#: (``python -m experiments.restore.tune_mri_cs``; the benchmark uses the best per setting).
CS_METHODS = {"l1-wavelet": (3e-4, 100), "total-variation": (3e-3, 150)}


def _coils(kspace: np.ndarray, maps: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(kspace (C, H, W), maps (C, H, W))``, a single coil of ones when ``maps`` is None."""
    kspace = np.asarray(kspace, dtype=np.complex64)
    if maps is None:
        if kspace.ndim != 2:
            raise ValueError(f"single-coil k-space must be (H, W), got {kspace.shape}; give maps for coils")
        return kspace[None], np.ones((1, *kspace.shape), dtype=np.complex64)
    maps = np.asarray(maps, dtype=np.complex64)
    if kspace.ndim != 3 or maps.shape != kspace.shape:
        raise ValueError(f"multi-coil k-space {kspace.shape} and maps {maps.shape} must both be (coils, H, W)")
    return kspace, maps


def zero_filled(kspace: np.ndarray, mask: np.ndarray, maps: Optional[np.ndarray] = None) -> np.ndarray:
    """``sum_c conj(S_c) F^H (M y_c)``: the zero-filled, coil-combined image."""
    import sigpy as sp

    y, mps = _coils(kspace, maps)
    return (mps.conj() * sp.ifft(y * mask, axes=(-2, -1))).sum(0).astype(np.complex64)


def compressed_sensing(kspace: np.ndarray, mask: np.ndarray, maps: Optional[np.ndarray] = None,
                       method: str = "l1-wavelet", lam: Optional[float] = None,
                       iterations: Optional[int] = None) -> np.ndarray:
    """Compressed-sensing reconstruction (see the module docstring); ``lam`` and ``iterations``
    default to :data:`CS_METHODS`."""
    from sigpy.mri import app

    if method not in CS_METHODS:
        raise ValueError(f"unknown compressed-sensing method {method!r}; choose from {', '.join(CS_METHODS)}")
    lam = CS_METHODS[method][0] if lam is None else lam
    iterations = CS_METHODS[method][1] if iterations is None else iterations
    y, mps = _coils(kspace, maps)
    scale = float(np.abs(zero_filled(y, mask, mps)).max()) or 1.0
    weights = np.broadcast_to(np.asarray(mask, dtype=np.float32), y.shape[-2:])
    if method == "l1-wavelet":
        solver = app.L1WaveletRecon(y / scale, mps, lam, weights=weights, max_iter=iterations, show_pbar=False)
    else:
        solver = app.TotalVariationRecon(y / scale, mps, lam, weights=weights, max_iter=iterations, solver="ADMM",
                                         show_pbar=False)
    return (solver.run() * scale).astype(np.complex64)

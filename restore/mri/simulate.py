"""Simulated Cartesian acquisitions of magnitude slices, as a scanner would record them.

No raw k-space ships offline (see :mod:`restore.mri.volumes` for the images and their licences),
so every training/validation pair is simulated from a real magnitude slice ``m`` in [0, 1]:

1. complex image ``x = m * exp(i phi)`` with a smooth random phase ``phi`` (:func:`smooth_phase`);
2. coil images ``S_c x`` with ``sigpy.mri.birdcage_maps`` (multi-coil, ``sum_c |S_c|^2 = 1``) or
   ``x`` itself (single-coil);
3. fully sampled k-space ``k = fft2c(S x)`` (fastMRI's centred orthonormal FFT);
4. optional complex Gaussian noise at a given SNR (:func:`noise_std`), added to ``k``;
5. a seeded fastMRI column mask ``M`` (:func:`restore.mri.masks.column_mask`), measured data
   ``y = M * k``.

The result is an :class:`Acquisition` whose fields feed
:func:`restore.mri.fourier.cartesian_measurement` directly (:meth:`Acquisition.operator`). All
randomness comes from one seed (or a numpy/torch ``Generator``), split into independent streams for
the phase, the mask and the noise (``numpy.random.SeedSequence.spawn``), so switching the noise on
or off leaves the phase and mask unchanged. No global RNG is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Union

import numpy as np
import torch

from .fourier import cartesian_measurement, fft2c, ifft2c
from .masks import column_mask

Seed = Union[int, np.random.Generator, np.random.SeedSequence, torch.Generator, None]


@dataclass
class Acquisition:
    """One simulated slice; unbatched, complex64 tensors (add a batch axis for the operator).

    target:   (H, W) complex image ``x`` (noise-free; coil-combined for multi-coil)
    kspace:   ([C,] H, W) fully sampled k-space ``fft2c(S x) + noise``
    mask:     (W,) float32, 1 where a column is measured
    measured: ([C,] H, W) undersampled k-space ``mask * kspace`` (zeros where not measured)
    maps:     (C, H, W) coil sensitivities (``sum_c |S_c|^2 = 1``), or None (single-coil)
    noise_std: standard deviation ``sigma`` of the complex noise per k-space sample (0: none)
    """

    target: torch.Tensor
    kspace: torch.Tensor
    mask: torch.Tensor
    measured: torch.Tensor
    maps: Optional[torch.Tensor]
    noise_std: float = 0.0

    def operator(self):
        """``cartesian_measurement`` of this slice (batch of one): ``A x = M F S x``, data ``measured``."""
        maps = None if self.maps is None else self.maps[None]
        return cartesian_measurement(self.kspace[None], self.mask, maps)

    def zero_filled(self) -> torch.Tensor:
        """``A^H y``: the zero-filled (coil-combined) complex image, ``(H, W)``."""
        image = ifft2c(self.measured)
        if self.maps is not None:
            image = (self.maps.conj() * image).sum(0)
        return image


def _streams(seed: Seed, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed (an int, a SeedSequence, a numpy or torch Generator)."""
    if isinstance(seed, torch.Generator):
        seed = np.random.SeedSequence(int(torch.randint(2**62, (1,), generator=seed)))
    elif isinstance(seed, np.random.Generator):
        seed = np.random.SeedSequence(int(seed.integers(2**63)))
    elif not isinstance(seed, np.random.SeedSequence):
        seed = np.random.SeedSequence(seed)
    return [np.random.default_rng(s) for s in seed.spawn(n)]


def smooth_phase(shape: tuple[int, int], rng: np.random.Generator, order: int = 3,
                 max_phase: float = np.pi) -> np.ndarray:
    """A smooth random phase map ``(H, W)`` in radians, a low-order 2-D polynomial::

        phi(u, v) = phi0 + max_phase * q(u, v) / max |q|,
        q(u, v)   = sum_{1 <= i + j <= order} c_ij u^i v^j,   c_ij ~ N(0, 1),

    with ``u, v`` in [-1, 1] across the rows/columns and ``phi0 ~ U(-pi, pi)`` (the global phase):
    the slowly varying phase of B0 inhomogeneity and receive chains.
    """
    u = np.linspace(-1.0, 1.0, shape[0])[:, None]
    v = np.linspace(-1.0, 1.0, shape[1])[None, :]
    q = np.zeros(shape)
    for i in range(order + 1):
        for j in range(order + 1 - i):
            if i + j:
                q = q + rng.standard_normal() * u**i * v**j
    peak = np.abs(q).max()
    return rng.uniform(-np.pi, np.pi) + max_phase * q / (peak if peak > 0 else 1.0)


@lru_cache(maxsize=64)
def _birdcage(coils: int, shape: tuple[int, int], radius: float) -> np.ndarray:
    from sigpy.mri import birdcage_maps

    maps = birdcage_maps((coils, *shape), r=radius)
    maps = maps / np.sqrt((np.abs(maps) ** 2).sum(0, keepdims=True))
    maps = maps.astype(np.complex64)
    maps.setflags(write=False)
    return maps


def coil_maps(coils: int, shape: tuple[int, int], radius: float = 1.5) -> np.ndarray:
    """Birdcage coil sensitivities ``(coils, H, W)`` complex64 from ``sigpy.mri.birdcage_maps``,
    renormalised so that ``sum_c |S_c|^2 = 1`` at every pixel (``radius``: the coil ring's radius
    relative to the half field of view). Cached: a fresh writable copy per call."""
    return _birdcage(int(coils), tuple(int(n) for n in shape), float(radius)).copy()


def noise_std(kspace: torch.Tensor, snr_db: float) -> float:
    """``sigma = rms(k) / 10^(snr_db / 20)``, ``rms(k) = sqrt(mean |k|^2)`` over every sample (and coil)
    of the noise-free fully sampled k-space. ``F`` is orthonormal, so ``rms(k)`` is also the rms of
    the coil images and ``sigma`` the noise level per image pixel: SNR = rms signal / sigma."""
    rms = kspace.abs().pow(2).mean().sqrt().item()
    return rms / 10 ** (snr_db / 20)


def complex_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> torch.Tensor:
    """Circular complex Gaussian noise ``n ~ CN(0, sigma^2)``: real and imaginary parts i.i.d.
    ``N(0, sigma^2 / 2)``, so ``E|n|^2 = sigma^2``."""
    noise = rng.standard_normal((2, *shape)) * (sigma / np.sqrt(2.0))
    return torch.from_numpy((noise[0] + 1j * noise[1]).astype(np.complex64))


def simulate(magnitude: Union[np.ndarray, torch.Tensor], acceleration: Optional[int] = 4, mask: str = "random",
             coils: Optional[int] = None, snr_db: Optional[float] = None, seed: Seed = 0,
             center_fraction: Optional[float] = None, phase_order: int = 3, max_phase: float = np.pi,
             coil_radius: float = 1.5) -> Acquisition:
    """Simulate the acquisition of a magnitude slice ``(H, W)``.

    ``acceleration``: 4 or 8 (fastMRI centre fractions 0.08 / 0.04 unless ``center_fraction``),
    None or 1 for full sampling; ``mask``: "random" or "equispaced"; ``coils``: None (single-coil)
    or the number of birdcage coils (8-16); ``snr_db``: None (noise-free) or the SNR of
    :func:`noise_std`; ``seed``: int, SeedSequence, numpy or torch Generator (same seed, same result).
    ``phase_order``/``max_phase``: :func:`smooth_phase` (``max_phase=0``: constant phase).
    """
    magnitude = torch.as_tensor(np.asarray(magnitude, dtype=np.float32))
    if magnitude.ndim != 2:
        raise ValueError(f"expected a 2-D magnitude slice, got shape {tuple(magnitude.shape)}")
    shape = tuple(magnitude.shape)
    phase_rng, mask_rng, noise_rng = _streams(seed, 3)
    phase = torch.from_numpy(smooth_phase(shape, phase_rng, phase_order, max_phase).astype(np.float32))
    target = torch.polar(magnitude, phase)
    maps = None if coils is None else torch.from_numpy(coil_maps(coils, shape, coil_radius))
    kspace = fft2c(target if maps is None else maps * target)
    sigma = 0.0
    if snr_db is not None:
        sigma = noise_std(kspace, snr_db)
        kspace = kspace + complex_noise(tuple(kspace.shape), sigma, noise_rng)
    if acceleration in (None, 1):
        columns = torch.ones(shape[1])
    else:
        columns = column_mask(shape[1], acceleration, mask, center_fraction, seed=int(mask_rng.integers(2**31)))
    return Acquisition(target, kspace, columns, columns * kspace, maps, sigma)

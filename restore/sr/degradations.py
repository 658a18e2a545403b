"""Degradations that turn a high-resolution photo into a low-resolution input.

Images are float tensors ``(3, H, W)`` in [0, 1]. Two families:

* ``bicubic``: antialiased bicubic down-sampling by the scale factor (the classic benchmark).
* ``realistic``: a one-pass Real-ESRGAN-style chain -- blur (isotropic or anisotropic
  Gaussian), a random resize, Gaussian or Poisson noise (colour or grey), JPEG, a final resize
  to the target size with a random kernel, and sometimes a second JPEG.

All randomness comes from a ``numpy.random.Generator`` so validation pairs are reproducible.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

DEGRADATIONS = ("bicubic", "realistic")


def resize(img: torch.Tensor, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """Resize ``(C, H, W)`` to ``size = (h, w)``; antialiased when shrinking (not for 'nearest')."""
    kwargs = {} if mode in ("nearest", "area") else {"align_corners": False, "antialias": True}
    out = F.interpolate(img[None], size=size, mode=mode, **kwargs)[0]
    return out.clamp(0, 1)


def bicubic_down(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic down-sampling by an integer factor (image sides must divide)."""
    h, w = img.shape[-2:]
    return resize(img, (h // scale, w // scale), "bicubic")


def bicubic_up(img: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic up-sampling by an integer factor; works on ``(C,H,W)`` or ``(B,C,H,W)``."""
    batched = img.ndim == 4
    x = img if batched else img[None]
    out = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    return out if batched else out[0]


def gaussian_kernel(rng: np.random.Generator, size: int = 21) -> np.ndarray:
    """A random isotropic or anisotropic Gaussian blur kernel (sigma 0.2..2.5), normalised."""
    sx = rng.uniform(0.2, 2.5)
    sy = sx if rng.random() < 0.5 else rng.uniform(0.2, 2.5)
    theta = rng.uniform(0, math.pi)
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov = rot @ np.diag([sx**2, sy**2]) @ rot.T
    inv = np.linalg.inv(cov)
    r = np.arange(size) - size // 2
    xx, yy = np.meshgrid(r, r)
    pts = np.stack([xx, yy], -1)
    k = np.exp(-0.5 * np.einsum("...i,ij,...j->...", pts, inv, pts))
    return (k / k.sum()).astype(np.float32)


def jpeg(img: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip through JPEG at ``quality`` (OpenCV encoder)."""
    arr = (img.permute(1, 2, 0).numpy() * 255.0).round().clip(0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", arr[..., ::-1], [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    dec = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return torch.from_numpy(dec).permute(2, 0, 1).float() / 255.0


def add_noise(img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Gaussian (sigma 1..20 / 255) or Poisson noise, grey (shared by channels) 40% of the time."""
    grey = rng.random() < 0.4
    shape = (1,) + tuple(img.shape[1:]) if grey else tuple(img.shape)
    if rng.random() < 0.6:
        sigma = rng.uniform(1, 20) / 255.0
        noise = torch.from_numpy(rng.standard_normal(shape).astype(np.float32)) * sigma
    else:
        scale = 10 ** rng.uniform(2.0, 3.5)  # photons per unit intensity
        base = img.mean(0, keepdim=True) if grey else img
        noise = torch.from_numpy(rng.poisson(base.numpy() * scale).astype(np.float32)) / scale - base
    return (img + noise).clamp(0, 1)


def realistic_down(img: torch.Tensor, scale: int, rng: np.random.Generator) -> torch.Tensor:
    """Real-ESRGAN-style degradation to exactly ``(H/scale, W/scale)``."""
    h, w = img.shape[-2:]
    out = img
    if rng.random() < 0.8:
        k = torch.from_numpy(gaussian_kernel(rng))[None, None].repeat(3, 1, 1, 1)
        pad = k.shape[-1] // 2
        out = F.conv2d(F.pad(out[None], (pad,) * 4, mode="reflect"), k, groups=3)[0]
    modes = ("bilinear", "bicubic", "area")
    factor = rng.uniform(1.0 / scale, min(1.0, 2.0 / scale))
    mid = (max(1, round(h * factor)), max(1, round(w * factor)))
    out = resize(out, mid, modes[rng.integers(3)])
    if rng.random() < 0.8:
        out = add_noise(out, rng)
    if rng.random() < 0.8:
        out = jpeg(out, int(rng.integers(40, 96)))
    out = resize(out, (h // scale, w // scale), modes[rng.integers(3)])
    if rng.random() < 0.4:
        out = jpeg(out, int(rng.integers(60, 96)))
    return out


def degrade(img: torch.Tensor, scale: int, kind: str, rng: np.random.Generator) -> torch.Tensor:
    """Low-resolution version of ``img`` for degradation ``kind`` ("bicubic" or "realistic")."""
    if kind == "bicubic":
        return bicubic_down(img, scale)
    if kind == "realistic":
        return realistic_down(img, scale, rng)
    raise ValueError(f"unknown degradation {kind!r}; choose from {DEGRADATIONS}")

"""Assemble the super-resolved image from streamed row bands, so memory is the output plus O(band).

:func:`shared.tiling.tiled_bands` yields the blended model output top to bottom. Two passes
turn it into the output pixels without ever holding a full-size float image:

1. every band is clamped to [0, 1] and kept in a :class:`RowStore`: at 16-bit precision (step
   1/65535, 1/257 of an 8-bit step) for integer outputs, in float32 for float outputs, while the
   colour statistics the fix needs are summed;
2. :data:`ROWS` rows at a time (with a halo of rows for the wavelet fix), the colour fix of
   :mod:`restore.sr.colorfix` is applied, the result quantised into the output, and the store
   rows no longer needed are given back to the system.

The bicubic reference of the colour fix and the alpha plane are computed band by band too
(:func:`bicubic_rows`). Peak memory over the model: the larger of the store (6 bytes per output
pixel for integer outputs, 12 for float) and the output (3 bytes per pixel for 8-bit RGB, 12 for
float), plus one band of tiles (``tile x scale`` rows of the output width) and :data:`ROWS` rows
of work.
"""

from __future__ import annotations

import mmap
from typing import Iterable, Optional

import torch
import torch.nn.functional as F

from .colorfix import ChannelStats, adain_apply, wavelet_halo, wavelet_low

#: Output rows per band of the second pass.
ROWS = 128
#: Full-scale value of each integer output type (float32 outputs are in [0, 1]).
FULL_SCALE = {torch.uint8: 255.0, torch.uint16: 65535.0}


def bicubic_rows(lr: torch.Tensor, scale: int, start: int, stop: int) -> torch.Tensor:
    """Rows ``[start, stop)`` of ``bicubic_up(lr, scale)`` (``lr`` ``(B, C, h, w)``), clamped to
    [0, 1], computed from the input rows they depend on (+-2 rows of the cubic kernel) only.
    Equal to slicing the whole upsampled image: the kernel's taps and the border clamping are the same."""
    h = lr.shape[-2]
    lo, hi = max(0, start // scale - 2), min(h, -(-stop // scale) + 2)
    up = F.interpolate(lr[..., lo:hi, :], scale_factor=scale, mode="bicubic", align_corners=False)
    return up[..., start - lo * scale:stop - lo * scale, :].clamp_(0, 1)


def quantise(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in [0, 1] as ``dtype``: integer types rounded at full scale, float32 as is."""
    if dtype not in FULL_SCALE:
        return x.to(dtype)
    return x.mul(FULL_SCALE[dtype]).round_().to(torch.int32).to(dtype)


def quantise_into(out: torch.Tensor, x: torch.Tensor) -> None:
    """``out[...] = quantise(x, out.dtype)`` without temporaries: ``x`` (in [0, 1]) is overwritten."""
    out.copy_(x.mul_(FULL_SCALE[out.dtype]).round_() if out.dtype in FULL_SCALE else x)


def dequantise(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`quantise`: float32 in [0, 1], always a new tensor (never a view of ``x``)."""
    return x.float().div_(FULL_SCALE[x.dtype]) if x.dtype in FULL_SCALE else x.to(torch.float32, copy=True)


class RowStore:
    """Rows of an image kept between the two passes: appended top to bottom in bands, read back
    in any row range (:meth:`rows`), released from the top (:meth:`release`).

    Each band lives in its own anonymous memory map, unmapped on release, so its memory goes back
    to the system at once (heap blocks freed by ``del`` often stay in the process): pass 2 gives
    back the store as fast as it fills the output, and the two are never both whole.
    """

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype
        self.bands: list[tuple[int, int, mmap.mmap, torch.Tensor]] = []

    def append(self, start: int, x: torch.Tensor) -> None:
        """Keep ``x`` ``(C, r, W)`` in [0, 1] (overwritten) as rows ``[start, start + r)``."""
        size = x.numel() * torch.empty(0, dtype=self.dtype).element_size()
        buffer = mmap.mmap(-1, size)
        kept = torch.frombuffer(buffer, dtype=self.dtype).view(x.shape)
        quantise_into(kept, x.cpu())
        self.bands.append((start, start + x.shape[-2], buffer, kept))

    def rows(self, top: int, bottom: int) -> torch.Tensor:
        """Rows ``[top, bottom)`` as a new float32 tensor in [0, 1]."""
        parts = [kept[:, max(top, a) - a:min(bottom, b) - a] for a, b, _, kept in self.bands if a < bottom and b > top]
        return dequantise(parts[0] if len(parts) == 1 else torch.cat(parts, dim=1))

    def release(self, before: int) -> None:
        """Unmap the bands that end at or above row ``before``."""
        while self.bands and self.bands[0][1] <= before:
            _, _, buffer, kept = self.bands.pop(0)
            del kept
            buffer.close()


def assemble(bands: Iterable[tuple[int, torch.Tensor]], lr: torch.Tensor, scale: int, method: str,
             dtype: torch.dtype = torch.float32, grey: bool = False, reduce: int = 1) -> torch.Tensor:
    """The colour-fixed output ``(3, H, W)`` (``(1, H, W)``: the channel mean, if ``grey``) of
    ``dtype`` from the model's row bands of the one image ``lr`` ``(1, 3, h, w)``; see the module
    docstring for the passes and the memory they take. ``reduce``: the colour-fixed image is
    box-averaged over ``reduce x reduce`` blocks before it is quantised (a x4 model's output brought to
    x2), so the output is ``(H / reduce, W / reduce)``; :data:`ROWS` is a multiple of it."""
    if ROWS % reduce or scale % reduce:
        raise ValueError(f"reduce must divide the scale ({scale}) and {ROWS}, got {reduce}")
    H, W = lr.shape[-2] * scale, lr.shape[-1] * scale
    store = RowStore(torch.float32 if dtype == torch.float32 else torch.uint16)
    stats = ChannelStats() if method == "adain" else None
    for row, band in bands:
        band = band[0].clamp_(0, 1)
        if stats is not None:
            stats.update(band)
        store.append(row, band)
    reference = reference_stats(lr, scale) if stats is not None else None
    out = torch.empty(1 if grey else 3, H // reduce, W // reduce, dtype=dtype)
    halo = wavelet_halo() if method == "wavelet" else 0
    for start in range(0, H, ROWS):
        stop = min(H, start + ROWS)
        top, bottom = max(0, start - halo), min(H, stop + halo)
        x = store.rows(top, bottom).to(lr.device)
        if method == "adain":
            x = adain_apply(x, stats, reference)
        elif method == "wavelet":
            ref = bicubic_rows(lr, scale, top, bottom)[0]
            x = x.sub_(wavelet_low(x[None])[0]).add_(wavelet_low(ref[None])[0])
        x = x[:, start - top:stop - top].clamp_(0, 1)
        if reduce > 1:
            x = F.avg_pool2d(x[None], reduce)[0]
        quantise_into(out[:, start // reduce:stop // reduce], (x.mean(0, keepdim=True) if grey else x).cpu())
        store.release(stop - halo)
    store.release(H)
    return out


def reference_stats(lr: torch.Tensor, scale: int) -> ChannelStats:
    """Per-channel statistics of the clamped bicubic upsampling of ``lr``, band by band."""
    stats = ChannelStats()
    H = lr.shape[-2] * scale
    for start in range(0, H, ROWS):
        stats.update(bicubic_rows(lr, scale, start, min(H, start + ROWS))[0])
    return stats


def upscale_alpha(alpha: Optional[torch.Tensor], scale: int, dtype: torch.dtype) -> Optional[torch.Tensor]:
    """Bicubic upsampling of an alpha plane ``(1, h, w)`` into ``dtype``, band by band."""
    if alpha is None:
        return None
    H, W = alpha.shape[-2] * scale, alpha.shape[-1] * scale
    out = torch.empty(1, H, W, dtype=dtype)
    for start in range(0, H, ROWS):
        stop = min(H, start + ROWS)
        quantise_into(out[:, start:stop], bicubic_rows(alpha[None], scale, start, stop)[0].cpu())
    return out

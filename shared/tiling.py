"""Gaussian-weighted overlapping tiles for any 2-D input (images, spectrograms, grids).

A function ``fn`` maps an input tile ``(B, C, h, w)`` to an output tile ``(B, C', s*h, s*w)``
(``s`` = ``scale``, 1 for same-size tasks). Tiles overlap by ``overlap`` input pixels and are
blended with a separable Gaussian window::

    out = sum_k w_k * fn(tile_k) / sum_k w_k,   w_k(u, v) = g(u) g(v),
    g(u) = exp(-(u - c)^2 / (2 (sigma_frac * L)^2)),   u = 0..L-1, c = (L-1)/2

so seams vanish while every output pixel is a convex combination of tile outputs.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets that cover ``[0, length)`` with tiles of ``tile`` overlapping >= ``overlap``."""
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    stride = tile - overlap
    n = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(n)})


def balanced_tile(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """Smallest tile (a multiple of ``multiple``, at most ``tile``) that covers ``length`` with as
    few tiles as ``tile`` needs: ``ceil((length + (n - 1) overlap) / n)`` for ``n`` tiles.

    A 4.5 s recording cut into 4.1 s chunks otherwise costs two full chunks (8.2 s of work); the
    balanced tile cuts it into two 2.5 s chunks with the same overlap.
    """
    n = len(tile_starts(length, tile, overlap))
    size = -(-(length + (n - 1) * overlap) // n)
    return min(tile, -(-size // multiple) * multiple)


def gaussian_window(height: int, width: int, sigma_frac: float = 0.25, device=None, dtype=None) -> torch.Tensor:
    """Separable Gaussian weights ``(height, width)``, peak 1 at the centre."""
    def g(n: int) -> torch.Tensor:
        u = torch.arange(n, device=device, dtype=torch.float64)
        c = (n - 1) / 2
        return torch.exp(-((u - c) ** 2) / (2 * (sigma_frac * n) ** 2))
    return (g(height)[:, None] * g(width)[None, :]).to(dtype or torch.float32)


def count_tiles(height: int, width: int, tile: Optional[int], overlap: int) -> int:
    """Number of tiles :func:`tiled_apply` will evaluate."""
    if not tile:
        return 1
    return len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def coverage(length: int, tile: int, overlap: int, scale: int = 1, device=None) -> torch.Tensor:
    """``sum_k g(u - start_k)`` over the tiles along one axis (in output samples ``u``)."""
    n = min(tile, length) * scale
    g = gaussian_window(n, 1, device=device)[:, 0]
    total = torch.zeros(length * scale, device=device)
    for start in tile_starts(length, tile, overlap):
        total[start * scale:start * scale + n] += g
    return total


def tiled_bands(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: Optional[int],
    overlap: int = 0,
    scale: int = 1,
    progress: Optional[Callable[[], None]] = None,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Apply ``fn`` tile by tile and yield the blended output top to bottom, as it becomes final.

    Yields ``(row, band)``: ``band`` ``(B, C', r, W*scale)`` float32 holds output rows
    ``[row, row + r)``, which no later tile touches. The window is separable and the tiles lie on
    a grid, so the blend weight is separable too::

        sum_k g(u - top_k) g(v - left_k) = R(u) C(v),  R = sum_i g(u - top_i),  C = sum_j g(v - left_j)

    and only the rows a pending tile row still overlaps are held: memory is one band of
    ``tile * scale`` output rows, never the whole output. A yielded band is a view of that buffer,
    valid until the next one is asked for. ``tile=None`` (or a tile covering the input) calls
    ``fn`` once and yields its whole output.
    """
    B, _, H, W = x.shape
    if not tile or (tile >= H and tile >= W):
        out = fn(x).float()
        if progress:
            progress()
        yield 0, out
        return
    h, w, s = min(tile, H), min(tile, W), scale
    tops, lefts = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    rows, cols_weight = coverage(H, tile, overlap, s, x.device), coverage(W, tile, overlap, s, x.device)
    window = gaussian_window(h * s, w * s, device=x.device)
    band, held = None, 0               # band rows [:held] hold the previous tile row's overlap
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            y = fn(x[..., top:top + h, left:left + w]).float()
            if band is None:           # one buffer for the whole run: no heap churn between bands
                band = torch.zeros(B, y.shape[1], h * s, W * s, device=y.device)
            elif j == 0:
                band[..., held:, :] = 0
            band[..., left * s:(left + w) * s].addcmul_(y, window)
            if progress:
                progress()
        done = (tops[i + 1] - top if i + 1 < len(tops) else h) * s
        yield top * s, band[..., :done, :].div_(rows[top * s:top * s + done, None]).div_(cols_weight)
        held = h * s - done
        band[..., :held, :] = band[..., done:, :].clone()


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: Optional[int],
    overlap: int = 0,
    scale: int = 1,
    progress: Optional[Callable[[], None]] = None,
) -> torch.Tensor:
    """Apply ``fn`` to ``x`` ``(B, C, H, W)`` tile by tile and blend with Gaussian weights; the
    whole output at once (:func:`tiled_bands` streams it instead).

    ``tile=None`` (or a tile covering the input) calls ``fn`` once on the whole input.
    Apart from the output, memory is bounded by one band of tiles.
    """
    B, _, H, W = x.shape
    out = None
    for row, band in tiled_bands(fn, x, tile, overlap, scale, progress):
        if band.shape[-2] == H * scale:   # one band: the whole output
            return band.to(x.dtype)
        if out is None:
            out = torch.empty(B, band.shape[1], H * scale, W * scale, device=band.device, dtype=x.dtype)
        out[..., row:row + band.shape[-2], :] = band
    return out


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B, C, h, w)`` at bottom/right so both sides divide ``multiple`` (reflection where the
    input is large enough, else replication); returns the padded tensor and the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def tiled_denoiser(denoise: Callable[..., torch.Tensor], y: torch.Tensor, cond: Optional[torch.Tensor],
                   tile: Optional[int], overlap: int = 0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``denoise(x_t, t, y, cond)`` on a large grid as ``(x_t, t) -> x0_hat``, evaluated tile by tile and
    blended (:func:`tiled_apply` over the channels ``[x_t, y, cond]``), for the samplers.

    The sampler still holds the whole state and draws its noise for the whole grid, so every tile sees the
    same prior and step noise where tiles overlap (the noise is sliced, never redrawn per tile); the blend
    averages x0 estimates of one shared state, which leaves an ensemble's spread intact in the overlaps.
    ``t`` must be one timestep for the whole batch (as the samplers call it)."""
    parts = [y] + ([cond] if cond is not None else [])

    def run(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c, cy = x_t.shape[1], y.shape[1]

        def one(stack: torch.Tensor) -> torch.Tensor:
            rest = stack[:, c + cy:] if cond is not None else None
            return denoise(stack[:, :c], t, stack[:, c:c + cy], rest)

        return tiled_apply(one, torch.cat([x_t] + [p.to(x_t.dtype) for p in parts], dim=1), tile, overlap)

    return run

"""Preconditioning wrapper that turns any diffusers UNet into a conditional ``x0`` predictor.

The denoiser returns the x0 estimate for every process (the core contract, k-diffusion/EDM's
``D(x; sigma)``); all preconditioning lives here and in the process, never in samplers::

    out    = F( unshuffle(in(x_t, y, t)) ++ [unshuffle(y)] ++ [cond] , time(t) )   (then pixel-shuffled)
    x0_hat = process.network_output(out + skip * y, x_t, y, t)

* ``in`` and ``time`` come from the process (``network_input``, e.g. ResShift's ``c_in(t) x_t``,
  and ``model_time``); ``network_output`` turns the raw output into ``x0`` (the identity for
  x0-predicting processes, Tweedie for eps-predicting ones, EDM's ``c_skip``/``c_out`` for the
  residual-preconditioned SDE).
* ``unshuffle`` (space-to-depth by a factor r) lets the backbone work on a grid r times
  coarser: for x4 super-resolution the 3xHxW state becomes 48x(H/4)x(W/4), exactly the grid of
  the low-resolution input, which is concatenated as conditioning (3 more channels). This is a
  lossless "latent" that needs no pretrained autoencoder.
* ``concat_y`` also gives the backbone ``unshuffle(y)``: the degraded input laid out exactly
  like the state, so the correction ``x0 - y`` is a local function of its input channels
  (ResShift likewise concatenates the upsampled input at the latent grid).
* ``skip`` (0 or 1) makes an x0-predicting backbone predict the correction ``x0 - y`` instead of
  ``x0``; processes that precondition their own output use ``skip = 0``.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn


class ConditionalDenoiser(nn.Module):
    """``x0``-predicting denoiser: a backbone plus the process's preconditioning.

    Args:
        backbone: a module called as ``backbone(x, t).sample`` (``diffusers.UNet2DModel``).
        process: any :class:`shared.protocol.Process`.
        unshuffle: space-to-depth factor applied to the state before the backbone.
        skip: 1.0 to predict ``x0 = y + F(...)``, 0.0 to predict ``x0 = F(...)``.
    """

    def __init__(self, backbone: nn.Module, process, unshuffle: int = 1, skip: float = 1.0,
                 concat_y: bool = False):
        super().__init__()
        self.backbone = backbone
        self.process = process
        self.unshuffle = int(unshuffle)
        self.skip = float(skip)
        self.concat_y = bool(concat_y)

    @property
    def config(self) -> dict[str, Any]:
        """The wrapper's own settings (the backbone and process keep their own configs)."""
        return {"unshuffle": self.unshuffle, "skip": self.skip, "concat_y": self.concat_y}

    @property
    def grid_multiple(self) -> int:
        """Spatial multiple the input needs: ``unshuffle * 2^(levels - 1)`` for a diffusers UNet
        (each down block halves the grid), or the backbone's own ``grid_multiple``."""
        levels = getattr(getattr(self.backbone, "config", None), "block_out_channels", None)
        inner = 2 ** (len(levels) - 1) if levels else getattr(self.backbone, "grid_multiple", 1)
        return self.unshuffle * inner

    def _unshuffle(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x

    def backbone_input(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor,
                       cond: Optional[torch.Tensor]) -> torch.Tensor:
        """``unshuffle(network_input(x_t))``, then ``unshuffle(y)`` (if ``concat_y``) and ``cond``, along channels."""
        h = self._unshuffle(self.process.network_input(x_t, y, t))
        if self.concat_y:
            h = torch.cat([h, self._unshuffle(y).to(h.dtype)], dim=1)
        if cond is not None:
            cond = on_backbone_grid(cond, x_t.shape[2:], self.unshuffle)
            if cond.shape[2:] != h.shape[2:]:   # the grid: (H, W) of images, (L,) of series
                raise ValueError(
                    f"conditioning grid {tuple(cond.shape[2:])} does not match the backbone grid "
                    f"{tuple(h.shape[2:])}"
                )
            h = torch.cat([h, cond.to(h.dtype)], dim=1)
        return h

    def forward(
        self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor, cond: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """Return ``x0_hat`` for the state ``x_t`` at timestep(s) ``t``."""
        if t.ndim == 0:
            t = t.expand(x_t.shape[0])
        h = self.backbone_input(x_t, t, y, cond)
        time = self.process.model_time(t).to(h.device)
        out = self.backbone(h, time).sample
        if self.unshuffle > 1:
            out = F.pixel_shuffle(out, self.unshuffle)
        if self.skip:
            out = out + self.skip * y
        return self.process.network_output(out, x_t, y, t)


@torch.no_grad()
def predictive_conditioning(predictor: "ConditionalDenoiser", y: torch.Tensor, cond: Optional[torch.Tensor],
                            unshuffle: int) -> tuple[torch.Tensor, torch.Tensor]:
    """StoRM's inputs: the predictive estimate ``y_hat = D(y)`` becomes the process's target, and
    the raw input joins the conditioning: returns ``(y_hat, unshuffle(y) ++ cond)``."""
    t = torch.zeros(y.shape[0], dtype=torch.long, device=y.device)
    y_hat = predictor(y, t, y, cond)
    raw = F.pixel_unshuffle(y, unshuffle) if unshuffle > 1 else y
    if cond is None:
        return y_hat, raw
    return y_hat, torch.cat([raw, on_backbone_grid(cond, y.shape[2:], unshuffle).to(raw.dtype)], dim=1)


def on_backbone_grid(cond: torch.Tensor, state_grid, unshuffle: int) -> torch.Tensor:
    """Conditioning given on the state's grid (static fields of a field, masks of an image) is unshuffled
    like the state; conditioning already on the backbone grid is returned as it is."""
    if unshuffle > 1 and cond.ndim == 4 and tuple(cond.shape[2:]) == tuple(state_grid):
        return F.pixel_unshuffle(cond, unshuffle)
    return cond

"""Samplers: short functions over a denoiser ``f(x_t, t) -> x0_hat`` and a process.

Every sampler counts its network evaluations so pipelines and benchmarks can report them.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def sample_residual_shift(
    denoise: Denoise,
    process,
    y: torch.Tensor,
    num_steps: Optional[int] = None,
    deterministic: bool = False,
    generator=None,
    x_start: Optional[torch.Tensor] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> tuple[torch.Tensor, int]:
    """Reverse a residual-shift process from ``x_T = prior_sample(y)`` down to ``x0``.

    With ``deterministic=True`` this is the SinSR/DDIM-like sampler, whose endpoint is a
    deterministic function of ``x_T`` (the one-step student's distillation target).

    Returns ``(x0, number_of_network_evaluations)``.
    """
    process.set_timesteps(num_steps, device=y.device)
    x = process.prior_sample(y, generator=generator) if x_start is None else x_start
    nfe = 0
    for t in process.timesteps:
        t_batch = torch.full((y.shape[0],), int(t), device=y.device, dtype=torch.long)
        x0_hat = denoise(x, t_batch)
        nfe += 1
        x = process.step(x0_hat, t, x, y, generator=generator, deterministic=deterministic).prev_sample
        if progress is not None:
            progress(nfe)
    return x, nfe

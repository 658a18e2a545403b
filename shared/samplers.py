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


@torch.no_grad()
def sample_gaussian(
    denoise: Denoise,
    process,
    y: torch.Tensor,
    num_steps: int = 25,
    solver: str = "dpmsolver++",
    generator=None,
    progress: Optional[Callable[[int], None]] = None,
) -> tuple[torch.Tensor, int]:
    """Sample a :class:`~shared.processes.GaussianDiffusion` model (``denoise`` predicts ``eps``)
    with a diffusers solver (DDIM or DPM-Solver++) in ``num_steps`` evaluations."""
    sched = process.solver(solver)
    sched.set_timesteps(num_steps, device=y.device)
    x = process.prior_sample(y, generator=generator) * sched.init_noise_sigma
    nfe = 0
    for t in sched.timesteps:
        t_batch = torch.full((y.shape[0],), int(t), device=y.device, dtype=torch.long)
        eps = denoise(sched.scale_model_input(x, t), t_batch)
        nfe += 1
        x = sched.step(eps, t, x).prev_sample
        if progress is not None:
            progress(nfe)
    return x, nfe


def sample(denoise: Denoise, process, y: torch.Tensor, num_steps: Optional[int] = None,
           deterministic: bool = False, generator=None, solver: str = "dpmsolver++") -> tuple[torch.Tensor, int]:
    """Dispatch to the sampler that fits ``process`` (residual shift or Gaussian DDPM)."""
    from .processes import GaussianDiffusion

    if isinstance(process, GaussianDiffusion):
        return sample_gaussian(denoise, process, y, num_steps or 25, solver=solver, generator=generator)
    return sample_residual_shift(denoise, process, y, num_steps, deterministic=deterministic, generator=generator)

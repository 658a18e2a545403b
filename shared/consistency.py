"""Consistency models on residual-shift trajectories (any process with ``path_coefficients``).

A consistency function maps every point of one probability-flow trajectory to its clean end.
With ``q_t`` a noise level that vanishes at the boundary time ``t_min`` (``q_min`` its value
there)::

    f(x, t) = c_skip(t) x + c_out(t) F(x, t)
    c_skip  = s_d^2 / ((q_t - q_min)^2 + s_d^2)
    c_out   = 1 - c_skip

so ``f(x, t_min) = x`` exactly. ``F`` is the network's own clean estimate ``x0_hat(x, t)`` in
data units (what the denoiser returns), not a unit-variance output as in EDM's
``c_out = (sigma - sigma_min) s_d / sqrt(sigma^2 + s_d^2)``: that lets the student start as an
exact copy of the teacher, which matters on a CPU budget, while keeping the boundary condition.

The noise level (``noise_level``) is, for the path ``x_t = a_t x0 + b_t y + s_t eps``:

* ``"effective"`` (default): ``q_t = s_t / a_t``, the noise of ``(x_t - b_t y) / a_t`` read
  as an estimate of ``x0`` (EDM's sigma for this path). It grows without bound as the clean signal
  fades (ResShift: ``a_T = 0.02``), so ``c_skip`` is negligible at the top and the one-step output
  carries none of the prior's noise.
* ``"marginal"``: ``q_t = s_t``, the process's marginal std. With the speech SDE's small
  ``sigma_max`` this leaves ``c_skip(1) = 0.05`` at ``s_d = 0.06``: 5 % of the prior sample,
  white noise included, passes straight into the one-step output (measured: 0.12 lower PESQ than
  the same network's ``x0_hat``). Kept so checkpoints trained with it load unchanged.

Distillation (Song et al. 2023) on the grid ``t_min = t_0 < ... < t_N``: draw ``n``,
``x_{n+1} ~ q(x_{t_{n+1}} | x0, y)``, take one teacher step of the probability-flow ODE to
``t_n`` (:func:`shared.samplers.residual_path_step`), and pull ``f(x_{n+1}, t_{n+1})`` toward
the target network's ``f(x_n, t_n)`` (an EMA of the student, no gradient).

Multistep sampling: ``x0 = f(x, t_k)``, re-noise to the next time with ``add_noise``, repeat; one
model gives 1, 2, 4 ... steps.
"""

from __future__ import annotations

from typing import Optional

import torch
from diffusers.utils.torch_utils import randn_tensor

from .protocol import Denoise, GaussianPath, expand, grid_of, path_at
from .samplers import Callback, Progress, batch_timestep, evaluate, residual_path_step


NOISE_LEVELS = ("effective", "marginal")


def boundary_coefficients(sigma: torch.Tensor, sigma_min: float, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(c_skip, c_out)`` with ``c_skip = s_d^2 / ((sigma - sigma_min)^2 + s_d^2)``, ``c_out = 1 - c_skip``."""
    c_skip = sigma_data**2 / ((sigma - sigma_min) ** 2 + sigma_data**2)
    return c_skip, 1.0 - c_skip


def check_noise_level(kind: str) -> str:
    """``kind`` if it is one of :data:`NOISE_LEVELS`, else ``ValueError``."""
    if kind not in NOISE_LEVELS:
        raise ValueError(f"noise_level must be one of {NOISE_LEVELS}, got {kind!r}")
    return kind


def noise_level(process, t, kind: str = "effective") -> torch.Tensor:
    """The boundary's noise level at ``t``: ``s_t / a_t`` (``"effective"``) or ``s_t`` (``"marginal"``),
    with ``(a_t, s_t) = process.path_coefficients(t)``."""
    check_noise_level(kind)
    a, _, s = (torch.as_tensor(v).float() for v in process.path_coefficients(t))
    return s / a if kind == "effective" else s


def consistency_grid(process, num_intervals: Optional[int] = None) -> torch.Tensor:
    """Ascending times ``t_0 = t_min < ... < t_N`` of the process's ODE discretisation.

    Continuous time (float timesteps): ``N + 1`` evenly spaced times between the ends of the
    process's reverse grid (OU: ``linspace(t_eps, 1, N + 1)``). Discrete time (integer timesteps,
    ResShift): the clean end ``-1`` (``eta_0 = 0``) followed by every training timestep ``0..T-1``.
    """
    if torch.is_floating_point(process.timesteps):
        t_max, t_min = (float(v) for v in grid_of(process, 2))
        return torch.linspace(t_min, t_max, (num_intervals or len(process)) + 1)
    return torch.arange(-1, len(process))


def consistency_function(denoise: Denoise, process: GaussianPath, sigma_data: float, t_min,
                         level: str = "effective") -> Denoise:
    """``f(x, t) = c_skip x + c_out denoise(x, t)`` for a denoiser returning ``x0``; ``level`` is the
    boundary's noise level (:func:`noise_level`)."""
    q_min = float(noise_level(process, t_min, level))

    def f(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c_skip, c_out = boundary_coefficients(noise_level(process, t, level).to(x.device), q_min, sigma_data)
        return expand(c_skip, x) * x + expand(c_out, x) * denoise(x, t)

    return f


def distillation_loss(student: Denoise, target: Denoise, teacher_x0: Denoise, process: GaussianPath,
                      x0: torch.Tensor, y: torch.Tensor, grid: torch.Tensor, generator=None) -> torch.Tensor:
    """Consistency-distillation loss ``|f(x_{n+1}, t_{n+1}) - f^-(x_n^teacher, t_n)|^2``.

    ``student`` and ``target`` are consistency functions (see :func:`consistency_function`);
    ``teacher_x0(x, t)`` is the teacher's clean estimate. One sample of ``n`` per batch item.
    """
    b = x0.shape[0]
    n = torch.randint(0, len(grid) - 1, (b,), generator=generator)
    t_hi, t_lo = grid[n + 1].to(x0.device), grid[n].to(x0.device)
    z = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    x_hi = process.add_noise(x0, z, t_hi, y=y)
    with torch.no_grad():
        x0_teacher = teacher_x0(x_hi, t_hi)
        x_lo = residual_path_step(x0_teacher, x_hi, y, path_at(process, t_hi, x0), path_at(process, t_lo, x0))
        goal = target(x_lo, t_lo)
    return torch.mean((student(x_hi, t_hi) - goal) ** 2)


def sampler_times(grid: torch.Tensor, num_inference_steps: int, stop: int = 0) -> torch.Tensor:
    """The ``num_inference_steps`` times the multistep sampler evaluates, evenly spaced from the top of
    ``grid`` down toward ``grid[stop]``: ``grid[round(linspace(N, stop, k + 1))[:-1]]``.

    N = 30, ``stop`` 0: 2 steps ``t_30, t_15``, 4 steps ``t_30, t_22, t_15, t_8``; ``stop`` 15: 2 steps
    ``t_30, t_22``, 4 steps ``t_30, t_26, t_22, t_19``. A later evaluation re-noised to a low time passes that
    noise through ``c_skip``; ``stop`` keeps every evaluation where the model can still correct its estimate.
    """
    top = len(grid) - 1
    if not 0 <= stop < top:
        raise ValueError(f"stop must be in 0..{top - 1}, got {stop}")
    if not 1 <= num_inference_steps <= top - stop:
        raise ValueError(f"steps must be in 1..{top - stop}, got {num_inference_steps}")
    return grid[torch.linspace(top, stop, num_inference_steps + 1).round().long()[:-1]]


@torch.no_grad()
def sample_consistency(f: Denoise, process: GaussianPath, y: torch.Tensor, *, num_inference_steps: int = 1,
                       grid: Optional[torch.Tensor] = None, stop: int = 0, generator=None,
                       x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                       progress: Optional[Progress] = None) -> tuple[torch.Tensor, int]:
    """Multistep consistency sampling: ``num_inference_steps`` evaluations from the top of ``grid``.

    The times used are :func:`sampler_times`, evenly spaced from the top of ``grid`` toward ``grid[stop]``; after
    each evaluation (and the callback, as in :mod:`shared.samplers`) the clean estimate is
    re-noised to the next time with ``add_noise``.
    """
    grid = consistency_grid(process) if grid is None else grid
    times = sampler_times(grid, num_inference_steps, stop)
    x = process.prior_sample(y, generator=generator) if x_start is None else x_start
    x0 = x
    for k, t in enumerate(times):
        x, x0 = evaluate(f, x, t.to(grid.dtype), k, y, callback)
        if k + 1 < len(times):
            z = randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)
            x = process.add_noise(x0, z, batch_timestep(times[k + 1], y), y=y)
        if progress is not None:
            progress(k + 1)
    return x0, num_inference_steps

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


def residual_path_step(x0_hat: torch.Tensor, x_t: torch.Tensor, y: torch.Tensor, path_t, path_s) -> torch.Tensor:
    """Deterministic move from time t to s along a residual path, holding ``x0_hat`` fixed.

    For ``x_t = a_t x0 + (1 - a_t) y + s_t eps`` the implied noise is
    ``eps_hat = (x_t - a_t x0_hat - (1 - a_t) y) / s_t`` and::

        x_s = a_s x0_hat + (1 - a_s) y + s_s eps_hat

    This is the exact solution of the probability-flow ODE when ``x0_hat`` is constant over the
    step (a first-order exponential integrator, i.e. DDIM); for ResShift it is SinSR's step.
    ``path_t`` and ``path_s`` are ``(a, s)`` pairs from ``process.path_coefficients`` (floats, or
    tensors that broadcast against ``x_t``); ``s_t`` must be positive.
    """
    (a_t, s_t), (a_s, s_s) = path_t, path_s
    mean_t = a_t * x0_hat + (1 - a_t) * y
    return a_s * x0_hat + (1 - a_s) * y + (s_s / s_t) * (x_t - mean_t)


def _batch_time(t, y: torch.Tensor) -> torch.Tensor:
    return torch.full((y.shape[0],), float(t), device=y.device, dtype=torch.float32)


@torch.no_grad()
def sample_predictor_corrector(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    process,
    y: torch.Tensor,
    num_steps: int = 30,
    snr: float = 0.5,
    corrector_steps: int = 1,
    t_start: float = 1.0,
    x_start: Optional[torch.Tensor] = None,
    generator=None,
    progress: Optional[Callable[[int], None]] = None,
) -> tuple[torch.Tensor, int]:
    """SGMSE+ predictor-corrector sampler for a continuous SDE (:class:`shared.sde.OUVEScheduler`).

    On the grid ``linspace(t_start, t_eps, N)``, each step runs ``corrector_steps`` annealed
    Langevin corrections then one reverse-diffusion predictor step; the result is the last
    predictor mean (no noise added at the end). ``model(x_t, t)`` returns the model output the
    process understands (``eps`` or ``x0``, see :class:`shared.sde.OUVEScheduler`).
    With ``y`` replaced by a predictive estimate and ``x_start = y_hat + s z`` this is StoRM.
    N steps with one corrector cost ``2 N`` evaluations.
    """
    process.set_timesteps(num_steps, device=y.device, t_start=t_start)
    x = process.prior_sample(y, generator=generator, t=t_start) if x_start is None else x_start
    x_mean, nfe = x, 0
    for i, t in enumerate(process.timesteps):
        tb = _batch_time(t, y)
        for _ in range(corrector_steps):
            x, x_mean = process.correct(model(x, tb), float(t), x, y, snr=snr, generator=generator)
            nfe += 1
        out = process.step(model(x, tb), float(t), x, y, generator=generator, dt=process.step_size(i))
        x, x_mean = out.prev_sample, out.pred_original_sample
        nfe += 1
        if progress is not None:
            progress(nfe)
    return x_mean, nfe


@torch.no_grad()
def sample_probability_flow(
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    process,
    y: torch.Tensor,
    num_steps: int = 30,
    method: str = "ddim",
    t_start: float = 1.0,
    x_start: Optional[torch.Tensor] = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    denoise: bool = True,
    generator=None,
) -> tuple[torch.Tensor, int]:
    """Integrate the probability-flow ODE of a continuous process from ``t_start`` to ``t_eps``.

    ``method="ddim"``: ``num_steps`` fixed steps of :func:`residual_path_step` (first-order
    exponential integrator); after the last step the Tweedie ``x0_hat`` is returned.
    ``method="euler"``: fixed Euler steps of ``dx/dt = theta (y - x) - g^2/2 score``.
    ``method="rk45"``: adaptive Dormand-Prince (``scipy.integrate.solve_ivp``, as SGMSE+'s ODE
    sampler) with tolerances ``rtol``/``atol``; ``num_steps`` is ignored. With ``denoise`` (as
    SGMSE+) one noise-free predictor step from ``t_eps`` to 0 follows.
    """
    x = process.prior_sample(y, generator=generator, t=t_start) if x_start is None else x_start
    t_eps = process.config.t_eps
    if method == "rk45":
        x, nfe = _solve_ivp(model, process, x, y, t_start, t_eps, rtol, atol)
        if denoise:
            x = process.step(model(x, _batch_time(t_eps, y)), t_eps, x, y, dt=t_eps).pred_original_sample
            nfe += 1
        return x, nfe
    if method not in ("ddim", "euler"):
        raise ValueError(f"unknown ODE method {method!r}; choose 'ddim', 'euler' or 'rk45'")
    times = torch.linspace(t_start, t_eps, num_steps + 1)
    nfe = 0
    for t, s in zip(times[:-1], times[1:]):
        out = model(x, _batch_time(t, y))
        nfe += 1
        if method == "ddim":
            x0_hat = process.predict_x0(out, x, y, float(t))
            path_t = [float(v) for v in process.path_coefficients(float(t))]
            path_s = [float(v) for v in process.path_coefficients(float(s))]
            x = residual_path_step(x0_hat, x, y, path_t, path_s)
        else:
            x = x - process.ode_velocity(out, float(t), x, y) * float(t - s)
    if method == "ddim":
        x = process.predict_x0(model(x, _batch_time(t_eps, y)), x, y, t_eps)
        nfe += 1
    return x, nfe


def _solve_ivp(model, process, x, y, t_start, t_end, rtol, atol) -> tuple[torch.Tensor, int]:
    """Adaptive RK45 on the flattened state (the ODE runs backward in time)."""
    import numpy as np
    from scipy.integrate import solve_ivp

    shape, dtype, device = x.shape, x.dtype, x.device
    nfe = 0

    def velocity(t, flat):
        nonlocal nfe
        xt = torch.from_numpy(flat.astype(np.float32)).reshape(shape).to(device, dtype)
        nfe += 1
        v = process.ode_velocity(model(xt, _batch_time(t, y)), float(t), xt, y)
        return v.detach().cpu().numpy().reshape(-1).astype(np.float64)

    sol = solve_ivp(velocity, (t_start, t_end), x.detach().cpu().numpy().reshape(-1).astype(np.float64),
                    rtol=rtol, atol=atol, method="RK45")
    out = torch.from_numpy(sol.y[:, -1].astype(np.float32)).reshape(shape).to(device, dtype)
    return out, nfe


def sample(denoise: Denoise, process, y: torch.Tensor, num_steps: Optional[int] = None,
           deterministic: bool = False, generator=None, solver: str = "dpmsolver++") -> tuple[torch.Tensor, int]:
    """Dispatch to the sampler that fits ``process`` (residual shift or Gaussian DDPM)."""
    from .processes import GaussianDiffusion
    from .sde import OUVEScheduler

    if isinstance(process, OUVEScheduler):
        return sample_predictor_corrector(denoise, process, y, num_steps or len(process), generator=generator)
    if isinstance(process, GaussianDiffusion):
        return sample_gaussian(denoise, process, y, num_steps or 25, solver=solver, generator=generator)
    return sample_residual_shift(denoise, process, y, num_steps, deterministic=deterministic, generator=generator)

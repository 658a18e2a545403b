"""Samplers: one short function per algorithm over ``(denoise, process, y)``.

``denoise(x_t, t) -> x0_hat`` is a denoiser with the observation and conditioning bound
(:class:`shared.denoiser.ConditionalDenoiser` always returns the x0 estimate). Every sampler takes
the same keywords and returns ``(x0, network_evaluations)``:

* ``num_inference_steps`` -- steps of the process's grid (``process.set_timesteps``);
* ``generator``           -- the only source of randomness (same seed, same output);
* ``start``, ``x_start``  -- a shallow start: begin at timestep ``start`` (StoRM, CRP, SDEdit)
  and/or from a given sample instead of ``process.prior_sample``;
* ``callback``            -- called after every network evaluation with a :class:`Step`; it may
  return a replacement (``dataclasses.replace(step, x0_hat=...)``) to change the x0 estimate or
  the current sample. Data consistency, guidance and similar per-step operations plug in here,
  once, for every sampler;
* ``progress``            -- called with the evaluations so far after every step.

Algorithms: :func:`sample_posterior` (the process's own stochastic step: ResShift's posterior,
a DDPM solver, SGMSE+'s reverse-diffusion predictor), :func:`sample_deterministic` (DDIM/SinSR:
the exponential integrator of the probability-flow ODE on any Gaussian path),
:func:`sample_predictor_corrector` (SGMSE+), :func:`sample_probability_flow` (adaptive RK45 on the
probability-flow ODE), :func:`sample_heun` (EDM's second-order sampler on any Gaussian path) and, in :mod:`shared.consistency`, multistep consistency sampling.
:func:`sample` picks the process's default algorithm through the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .protocol import Denoise, GaussianPath, Process, ScoreSDE, path_at


@dataclass
class Step:
    """What a sampler's callback sees after one network evaluation.

    Attributes:
        index: position in the sampler's timestep grid (0 = first, at the top).
        timestep: the timestep of this evaluation.
        sample: the current state ``x_t`` the denoiser saw.
        x0_hat: the denoiser's x0 estimate.
    """

    index: int
    timestep: torch.Tensor
    sample: torch.Tensor
    x0_hat: torch.Tensor


Callback = Callable[[Step], Optional[Step]]
Progress = Callable[[int], None]


def batch_timestep(t, y: torch.Tensor) -> torch.Tensor:
    """Timestep ``t`` (a grid entry) repeated for every item of the batch, on ``y``'s device."""
    t = torch.as_tensor(t)
    return t.to(y.device).expand(y.shape[0])


def evaluate(denoise: Denoise, x: torch.Tensor, t, index: int, y: torch.Tensor,
             callback: Optional[Callback]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, x0_hat)`` after one denoiser evaluation at ``t`` and the optional callback."""
    x0_hat = denoise(x, batch_timestep(t, y))
    if callback is not None:
        changed = callback(Step(index, torch.as_tensor(t), x, x0_hat))
        if changed is not None:
            x, x0_hat = changed.sample, changed.x0_hat
    return x, x0_hat


def start_state(process: Process, y: torch.Tensor, num_inference_steps: Optional[int], start, x_start,
                generator) -> torch.Tensor:
    """Set the process's grid (from ``start``) and return the first sample (``x_start`` or a prior draw)."""
    process.set_timesteps(num_inference_steps, device=y.device, start=start)
    if x_start is not None:
        return x_start
    return process.prior_sample(y, generator=generator, timestep=start)


def residual_path_step(x0_hat: torch.Tensor, x_t: torch.Tensor, y: torch.Tensor, path_t, path_s) -> torch.Tensor:
    """Deterministic move from time t to s along a Gaussian path, holding ``x0_hat`` fixed.

    For ``x_t = a_t x0 + b_t y + s_t eps`` the implied noise is
    ``eps_hat = (x_t - a_t x0_hat - b_t y) / s_t`` and::

        x_s = a_s x0_hat + b_s y + s_s eps_hat

    This is the exact solution of the probability-flow ODE when ``x0_hat`` is constant over the
    step (a first-order exponential integrator, i.e. DDIM); for ResShift it is SinSR's step.
    ``path_t`` and ``path_s`` are ``(a, b, s)`` triples (``process.path_coefficients``: floats, or
    tensors that broadcast against ``x_t``); ``s_t`` must be positive.
    """
    (a_t, b_t, s_t), (a_s, b_s, s_s) = path_t, path_s
    return a_s * x0_hat + b_s * y + (s_s / s_t) * (x_t - a_t * x0_hat - b_t * y)


@torch.no_grad()
def sample_posterior(denoise: Denoise, process: Process, y: torch.Tensor, *,
                     num_inference_steps: Optional[int] = None, generator=None, start=None,
                     x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                     progress: Optional[Progress] = None) -> tuple[torch.Tensor, int]:
    """Ancestral sampling with the process's own ``step``: ResShift's posterior, a DDPM solver's
    step, SGMSE+'s reverse-diffusion predictor. Returns the last step's noise-free mean."""
    x = start_state(process, y, num_inference_steps, start, x_start, generator)
    out = None
    for i, t in enumerate(process.timesteps):
        x, x0_hat = evaluate(denoise, x, t, i, y, callback)
        out = process.step(x0_hat, t, x, y=y, generator=generator)
        x = out.prev_sample
        if progress is not None:
            progress(i + 1)
    return out.prev_sample_mean, len(process.timesteps)


@torch.no_grad()
def sample_deterministic(denoise: Denoise, process: GaussianPath, y: torch.Tensor, *,
                         num_inference_steps: Optional[int] = None, generator=None, start=None,
                         x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                         progress: Optional[Progress] = None) -> tuple[torch.Tensor, int]:
    """DDIM-like sampler on any Gaussian path (SinSR for ResShift): :func:`residual_path_step`
    between consecutive grid times; after the last grid time the x0 estimate is returned.

    The endpoint is a deterministic function of the start (``generator`` only draws the prior):
    the one-step student's distillation target. ``N`` grid times cost ``N`` evaluations.
    """
    x = start_state(process, y, num_inference_steps, start, x_start, generator)
    times = process.timesteps
    x0_hat = x
    for i, t in enumerate(times):
        x, x0_hat = evaluate(denoise, x, t, i, y, callback)
        if i + 1 < len(times):
            x = residual_path_step(x0_hat, x, y, path_at(process, t, x), path_at(process, times[i + 1], x))
        if progress is not None:
            progress(i + 1)
    return x0_hat, len(times)


@torch.no_grad()
def sample_predictor_corrector(denoise: Denoise, process: ScoreSDE, y: torch.Tensor, *,
                               num_inference_steps: Optional[int] = None, generator=None, start=None,
                               x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                               progress: Optional[Progress] = None, snr: float = 0.5,
                               corrector_steps: int = 1) -> tuple[torch.Tensor, int]:
    """SGMSE+ predictor-corrector sampler for a score SDE (:class:`shared.sde.OUVEScheduler`).

    On the grid ``linspace(start, t_eps, N)``, each step runs ``corrector_steps`` annealed
    Langevin corrections then one reverse-diffusion predictor step; the result is the last
    predictor mean (no noise added at the end). With ``y`` replaced by a predictive estimate and a
    shallow ``start`` this is StoRM. N steps with one corrector cost ``2 N`` evaluations.
    """
    x = start_state(process, y, num_inference_steps, start, x_start, generator)
    x_mean, nfe = x, 0
    for i, t in enumerate(process.timesteps):
        for _ in range(corrector_steps):
            x, x0_hat = evaluate(denoise, x, t, i, y, callback)
            x, x_mean = process.correct(x0_hat, float(t), x, y=y, snr=snr, generator=generator)
            nfe += 1
        x, x0_hat = evaluate(denoise, x, t, i, y, callback)
        out = process.step(x0_hat, float(t), x, y=y, generator=generator)
        x, x_mean = out.prev_sample, out.prev_sample_mean
        nfe += 1
        if progress is not None:
            progress(nfe)
    return x_mean, nfe


@torch.no_grad()
def sample_probability_flow(denoise: Denoise, process: ScoreSDE, y: torch.Tensor, *,
                            num_inference_steps: Optional[int] = None, generator=None, start=None,
                            x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                            progress: Optional[Progress] = None, rtol: float = 1e-5, atol: float = 1e-5,
                            final_denoise: bool = True) -> tuple[torch.Tensor, int]:
    """Adaptive Dormand-Prince (RK45, ``scipy.integrate.solve_ivp``, as SGMSE+'s ODE sampler) on the
    probability-flow ODE ``dx/dt = theta (y - x) - g^2/2 score`` from ``start`` (default 1) to
    ``t_eps``; the step count follows the tolerances (``num_inference_steps`` only sets the grid of
    the final step). With ``final_denoise`` one noise-free predictor step from ``t_eps`` to 0 follows.
    """
    import numpy as np
    from scipy.integrate import solve_ivp

    x = start_state(process, y, num_inference_steps, start, x_start, generator)
    t_start, t_end = float(process.timesteps[0]), float(process.timesteps[-1])
    shape, dtype, device = x.shape, x.dtype, x.device
    nfe = 0

    def velocity(t, flat):
        nonlocal nfe
        xt = torch.from_numpy(flat.astype(np.float32)).reshape(shape).to(device, dtype)
        xt, x0_hat = evaluate(denoise, xt, torch.tensor(t, dtype=torch.float32), nfe, y, callback)
        nfe += 1
        if progress is not None:
            progress(nfe)
        return process.ode_velocity(x0_hat, float(t), xt, y=y).cpu().numpy().reshape(-1).astype(np.float64)

    sol = solve_ivp(velocity, (t_start, t_end), x.cpu().numpy().reshape(-1).astype(np.float64),
                    rtol=rtol, atol=atol, method="RK45")
    x = torch.from_numpy(sol.y[:, -1].astype(np.float32)).reshape(shape).to(device, dtype)
    if final_denoise:
        x, x0_hat = evaluate(denoise, x, process.timesteps[-1], nfe, y, callback)
        x = process.step(x0_hat, process.timesteps[-1], x, y=y, generator=generator).prev_sample_mean
        nfe += 1
    return x, nfe


@torch.no_grad()
def sample_heun(denoise: Denoise, process: GaussianPath, y: torch.Tensor, *,
                num_inference_steps: Optional[int] = None, generator=None, start=None,
                x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                progress: Optional[Progress] = None) -> tuple[torch.Tensor, int]:
    """Heun's second-order method on the probability-flow ODE (EDM, Karras et al. 2022, Algorithm 1 without
    churn), on any Gaussian path ``x = a x0 + b y + s eps`` written in its variance-exploding form::

        u = (x - b y) / a,   sigma = s / a,   du/dsigma = (u - x0_hat) / sigma

    Each step from ``sigma_i`` to ``sigma_{i+1}`` takes an Euler step (``d_i = (u - x0_hat(u)) / sigma_i``),
    evaluates ``d'`` at its end and moves by the mean of the two slopes; after the last grid time the x0
    estimate is returned (the Euler step to ``sigma = 0``), so ``N`` grid times cost ``2N - 1`` evaluations.
    On EDM's path ``(1, 0, sigma)`` this is EDM's deterministic sampler."""
    x = start_state(process, y, num_inference_steps, start, x_start, generator)
    times = process.timesteps
    nfe, x0_hat = 0, x

    def to_u(x, t):
        a, b, s_ = path_at(process, t, x)
        return (x - b * y) / a, s_ / a

    def from_u(u, t):
        a, b, _ = path_at(process, t, u)
        return a * u + b * y

    for i, t in enumerate(times):
        x, x0_hat = evaluate(denoise, x, t, nfe, y, callback)
        nfe += 1
        if i + 1 < len(times):
            nxt = times[i + 1]
            u, sigma = to_u(x, t)
            d = (u - x0_hat) / sigma                                   # Euler to the next level ...
            a_next, _, s_next = path_at(process, nxt, x)
            sigma_next = s_next / a_next
            x_euler, x0_next = evaluate(denoise, from_u(u + (sigma_next - sigma) * d, nxt), nxt, nfe, y, callback)
            nfe += 1
            u_euler, _ = to_u(x_euler, nxt)
            d_next = (u_euler - x0_next) / sigma_next                  # ... and the mean of the two slopes
            x = from_u(u + (sigma_next - sigma) * (d + d_next) / 2, nxt)
        if progress is not None:
            progress(nfe)
    return x0_hat, nfe


#: Sampler functions by the name a process gives as its ``default_sampler``.
SAMPLERS: dict[str, Callable[..., tuple[torch.Tensor, int]]] = {
    "posterior": sample_posterior,
    "deterministic": sample_deterministic,
    "predictor_corrector": sample_predictor_corrector,
    "probability_flow": sample_probability_flow,
    "heun": sample_heun,
}


def sample(denoise: Denoise, process: Process, y: torch.Tensor, *, deterministic: bool = False,
           **kwargs) -> tuple[torch.Tensor, int]:
    """Sample with the process's default algorithm (``process.default_sampler``), or with
    :func:`sample_deterministic` when ``deterministic``; keywords as every sampler's."""
    name = "deterministic" if deterministic else process.default_sampler
    return SAMPLERS[name](denoise, process, y, **kwargs)

"""The core contract every process, denoiser and sampler of the suite relies on.

A *process* is a diffusers-style scheduler that moves clean data ``x0`` toward a degraded
observation ``y`` (or toward noise) and back. Every process implements :class:`Process`; the
continuous Gaussian ones also implement :class:`GaussianPath`. Samplers
(:mod:`shared.samplers`) and the denoiser (:mod:`shared.denoiser`) talk to processes only through
these protocols, never by ``isinstance`` or ``hasattr``.

Conventions (diffusers' meanings, plus the observation ``y``):

* ``y`` is keyword-only wherever it appears (``add_noise(x0, noise, t, *, y)``,
  ``step(model_output, t, sample, *, y)``): a DDIM-style positional call cannot pass a wrong ``y``.
* ``model_output`` is always the **x0 estimate**: the denoiser returns it for every process
  (conversions from eps or score outputs of a backbone live in ``network_output``), and
  ``step(...).pred_original_sample`` is that estimate. Where a process's step has a noise-free
  mean (SGMSE+'s predictor), it is returned separately as ``prev_sample_mean``.
* ``timesteps`` are descending after ``set_timesteps``: integer for discrete-time processes (ResShift,
  DDPM), float for continuous-time ones (the SDEs, and the masked token process on ``(0, 1]``).
  ``set_timesteps(n, device, start=t)`` begins the reverse process at ``t`` instead of the top (a
  shallow start, as StoRM/CRP/SDEdit), and ``prior_sample(y, generator, timestep=t)`` draws the
  matching starting point.
* ``init_noise_sigma`` is the standard deviation of the prior around its mean (diffusers scales
  its initial noise by it).

The protocol assumes nothing about the data being continuous: a discrete (masked) process
implements the same methods on token tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

import torch
from diffusers.utils import BaseOutput

#: ``denoise(x_t, t) -> x0_hat``: a denoiser with the observation and conditioning bound.
Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class ProcessStepOutput(BaseOutput):
    """Result of one reverse step.

    Attributes:
        prev_sample: the next sample ``x_s`` (``s < t``).
        pred_original_sample: the x0 estimate the step used (always x0, diffusers' meaning).
        prev_sample_mean: the noise-free part of ``x_s`` where the step adds noise (else ``prev_sample``).
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor
    prev_sample_mean: Optional[torch.Tensor] = None


@runtime_checkable
class Process(Protocol):
    """A forward process with its reverse step, as a diffusers scheduler with an observation ``y``."""

    timesteps: torch.Tensor
    config: object
    #: name of the sampler :func:`shared.samplers.sample` uses by default (``shared.samplers.SAMPLERS``)
    default_sampler: str

    @property
    def init_noise_sigma(self) -> float: ...

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *, start=None) -> None: ...

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep=None) -> torch.Tensor: ...

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps, *,
                  y: torch.Tensor) -> torch.Tensor: ...

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
             generator=None, return_dict: bool = True): ...

    def network_input(self, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor: ...

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor: ...

    def model_time(self, timesteps) -> torch.Tensor: ...

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor: ...


@runtime_checkable
class GaussianPath(Process, Protocol):
    """A process whose marginal is ``x_t = a_t x0 + b_t y + s_t eps`` with ``eps ~ N(0, I)``.

    ResShift: ``(1 - eta, eta, kappa sqrt(eta))``; OU: ``(e^{-theta t}, 1 - e^{-theta t}, sigma(t))``;
    DDPM: ``(sqrt(abar), 0, sqrt(1 - abar))``.
    """

    def path_coefficients(self, timesteps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class ScoreSDE(GaussianPath, Protocol):
    """A continuous Gaussian path given by an SDE: adds the score, the Langevin corrector and the
    probability-flow velocity that the predictor-corrector and ODE samplers need."""

    def score(self, x0_hat: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor: ...

    def correct(self, x0_hat: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
                snr: float = 0.5, generator=None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def ode_velocity(self, x0_hat: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor) -> torch.Tensor: ...


def grid_of(process: Process, num_inference_steps: Optional[int] = None) -> torch.Tensor:
    """The descending timesteps ``set_timesteps(num_inference_steps)`` gives, read from a copy so the
    caller's schedule is left as it was."""
    import copy

    probe = copy.deepcopy(process)
    probe.set_timesteps(num_inference_steps)
    return probe.timesteps


def uniform_tensor(shape, generator=None, device=None) -> torch.Tensor:
    """``U[0, 1)`` float32 draws from ``generator`` (made on the generator's device, then moved to
    ``device``), the uniform counterpart of diffusers' ``randn_tensor``."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where, dtype=torch.float32).to(device)


def expand(values, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector ``(B,)`` (or a scalar) to broadcast against ``like``."""
    values = torch.as_tensor(values).to(device=like.device, dtype=like.dtype)
    if values.ndim == 0:
        return values
    return values.reshape(values.shape + (1,) * (like.ndim - values.ndim))


def path_at(process: GaussianPath, timesteps, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(a_t, b_t, s_t)`` of ``process`` broadcast against ``like``."""
    return tuple(expand(v, like) for v in process.path_coefficients(timesteps))


def eps_from_x0(process: GaussianPath, x0_hat: torch.Tensor, sample: torch.Tensor, y: torch.Tensor,
                timesteps) -> torch.Tensor:
    """The noise implied by an x0 estimate: ``eps_hat = (x_t - a_t x0_hat - b_t y) / s_t``."""
    a, b, s = path_at(process, timesteps, sample)
    return (sample - a * x0_hat - b * y) / s


def x0_from_eps(process: GaussianPath, eps_hat: torch.Tensor, sample: torch.Tensor, y: torch.Tensor,
                timesteps) -> torch.Tensor:
    """Tweedie's x0 estimate from a noise estimate: ``x0_hat = (x_t - b_t y - s_t eps_hat) / a_t``."""
    a, b, s = path_at(process, timesteps, sample)
    return (sample - b * y - s * eps_hat) / a

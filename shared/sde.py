"""Continuous mean-reverting SDE (SGMSE+ "OUVE") behind the core contract (:mod:`shared.protocol`).

Forward SDE on ``t in [0, 1]`` (Richter et al., SGMSE+)::

    dx = theta (y - x) dt + g(t) dw,      g(t) = s_min (s_max/s_min)^t sqrt(2 L),  L = ln(s_max/s_min)

Marginal ``q(x_t | x0, y) = N(mu_t, sigma_t^2 I)`` with::

    mu_t      = e^{-theta t} x0 + (1 - e^{-theta t}) y
    sigma_t^2 = s_min^2 ((s_max/s_min)^{2t} - e^{-2 theta t}) L / (theta + L)

The state is real-valued. Complex data (a spectrogram) is stored as two real channels
(real, imaginary); SGMSE+'s complex noise has variance 1/2 per real part, so such data uses
``component_scale = 1/sqrt(2)``: every per-channel standard deviation and diffusion coefficient
here is the complex one times ``component_scale``. With that convention all formulas below are the
ordinary real-coordinate ones.

Two parametrisations of the score network (``parametrization``):

* ``"eps"`` (SGMSE+): the backbone sees ``x_t`` and predicts the normalised noise ``eps``
  (``x_t = mu_t + sigma_t eps``, ``a_t = e^{-theta t}``); :meth:`OUVEScheduler.network_output`
  turns it into Tweedie's ``x0_hat = (x_t - (1 - a_t) y - sigma_t eps_hat) / a_t``, and the
  denoising score-matching loss ``|sigma_t s_theta + z|^2`` is ``|eps_hat - z|^2``.

* ``"residual"`` (EDM preconditioning of the residual ``r = x0 - y``): with the effective noise
  level ``q_t = sigma_t / a_t`` of ``(x_t - y) / a_t = r + q_t eps`` and data scale ``s_d``::

      c_in = 1 / sqrt(q^2 + s_d^2),  c_skip = s_d^2 / (q^2 + s_d^2),  c_out = q s_d / sqrt(q^2 + s_d^2)
      x0_hat = y + c_skip (x_t - y) / a_t + c_out F(c_in (x_t - y) / a_t)

  trained with EDM's weight ``lambda = 1/q^2 + 1/s_d^2`` on ``|x0_hat - x0|^2`` (a weighted DSM
  loss: ``|sigma_t s_theta + z|^2 = |x0_hat - x0|^2 / q^2``). At high noise ``F = 0`` already gives
  ``x0_hat ~ y``, so the network only learns the small correction: far easier than predicting
  ``eps`` to the ~1 % precision that the residual needs at t = 1.

Either way the denoiser returns ``x0_hat`` (the core contract), and the score the samplers use is
``score = -(x_t - a_t x0_hat - (1 - a_t) y) / sigma_t^2``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.utils.torch_utils import randn_tensor

from .preconditioning import path_scales, residual_input, residual_output, residual_weight
from .processes import ProcessScheduler
from .protocol import Denoise, eps_from_x0, expand, x0_from_eps


class OUVEScheduler(ProcessScheduler):
    """SGMSE+'s Ornstein-Uhlenbeck SDE with variance-exploding noise, as a diffusers scheduler.

    Timesteps are continuous floats in ``[t_eps, 1]``. ``set_timesteps(N)`` gives SGMSE+'s
    reverse grid ``linspace(1, t_eps, N)``; :meth:`step` is its reverse-diffusion predictor and
    :meth:`correct` its annealed Langevin corrector (see :func:`shared.samplers.sample_predictor_corrector`).

    Args:
        theta: stiffness of the drift toward ``y``.
        sigma_min, sigma_max: the noise schedule's end points (complex standard deviations).
        t_eps: smallest time used in training and sampling.
        num_train_timesteps: default number of reverse steps ``N``.
        component_scale: per-real-channel factor on every standard deviation (``1/sqrt(2)`` for
            complex data stored as real/imaginary channels, ``1`` for real data).
        parametrization: ``"eps"`` (SGMSE+) or ``"residual"`` (EDM-preconditioned ``x0 - y``).
        sigma_data: ``s_d``, the scale of ``x0 - y`` (``"residual"`` only).
    """

    default_sampler = "predictor_corrector"

    @register_to_config
    def __init__(self, theta: float = 1.5, sigma_min: float = 0.05, sigma_max: float = 0.5,
                 t_eps: float = 0.03, num_train_timesteps: int = 30, component_scale: float = 1.0,
                 parametrization: str = "eps", sigma_data: float = 0.05):
        if not 0 < sigma_min < sigma_max:
            raise ValueError("need 0 < sigma_min < sigma_max")
        if theta <= 0:
            raise ValueError("theta must be > 0")
        if not 0 < t_eps < 1:
            raise ValueError("t_eps must be in (0, 1)")
        if parametrization not in ("eps", "residual"):
            raise ValueError("parametrization must be 'eps' or 'residual'")
        self.log_ratio = math.log(sigma_max / sigma_min)
        self.num_inference_steps: Optional[int] = None
        self.timesteps = torch.linspace(1.0, t_eps, num_train_timesteps)

    # ----------------------------------------------------------------- schedule
    def _t(self, t) -> torch.Tensor:
        return torch.as_tensor(t, dtype=torch.float64).cpu()

    def sigma(self, t) -> torch.Tensor:
        """Complex marginal std ``sigma_t`` (0.389 at t = 1 with the defaults), unscaled."""
        c = self.config
        t = self._t(t)
        L = self.log_ratio
        var = c.sigma_min**2 * (torch.exp(2 * L * t) - torch.exp(-2 * c.theta * t)) * L / (c.theta + L)
        return var.sqrt()

    def marginal_std(self, t) -> torch.Tensor:
        """Per-channel standard deviation of ``x_t`` given ``(x0, y)``: ``component_scale * sigma_t``."""
        return self.config.component_scale * self.sigma(t)

    def mean_coefficient(self, t) -> torch.Tensor:
        """Weight ``a_t = e^{-theta t}`` of ``x0`` in the marginal mean ``a_t x0 + (1 - a_t) y``."""
        return torch.exp(-self.config.theta * self._t(t))

    def diffusion(self, t) -> torch.Tensor:
        """Per-channel diffusion coefficient ``component_scale * g(t)``."""
        c = self.config
        t = self._t(t)
        g = c.sigma_min * torch.exp(self.log_ratio * t) * math.sqrt(2 * self.log_ratio)
        return c.component_scale * g

    def path_coefficients(self, t) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a_t, 1 - a_t, s_t)``: ``x_t = a_t x0 + (1 - a_t) y + s_t eps``."""
        a = self.mean_coefficient(t)
        return a, 1 - a, self.marginal_std(t)

    @property
    def init_noise_sigma(self) -> float:
        """Per-channel standard deviation of the prior around ``y`` at t = 1."""
        return float(self.marginal_std(1.0))

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *,
                      start: Optional[float] = None) -> None:
        """Reverse grid ``linspace(start, t_eps, N)`` (SGMSE+: ``start = 1``; StoRM/CRP start lower)."""
        n = self.config.num_train_timesteps if num_inference_steps is None else int(num_inference_steps)
        start = 1.0 if start is None else float(start)
        if n < 1:
            raise ValueError(f"steps must be >= 1, got {n}")
        if not self.config.t_eps < start <= 1.0:
            raise ValueError(f"start must be in (t_eps, 1], got {start}")
        self.num_inference_steps = n
        self.timesteps = torch.linspace(start, self.config.t_eps, n, device=device)

    def step_size(self, index: int) -> float:
        """``dt`` of reverse step ``index``: the gap to the next grid time, and ``t_eps`` (to 0) last."""
        ts = self.timesteps
        return float(ts[index] - ts[index + 1]) if index + 1 < len(ts) else float(ts[-1])

    # ----------------------------------------------------------------- forward process
    def add_noise(self, original_samples, noise, timesteps, *, y) -> torch.Tensor:
        """A draw from ``q(x_t | x0, y)``: ``a_t x0 + (1 - a_t) y + s_t noise``."""
        a = expand(self.mean_coefficient(timesteps), original_samples)
        s = expand(self.marginal_std(timesteps), original_samples)
        return a * original_samples + (1 - a) * y + s * noise

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep: Optional[float] = None) -> torch.Tensor:
        """Start of the reverse process: ``x_t = y + s_t z`` at t = 1 (or ``timestep``: CRP/StoRM start lower)."""
        z = randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y + float(self.marginal_std(1.0 if timestep is None else timestep)) * z

    def model_time(self, timesteps) -> torch.Tensor:
        """Continuous ``t`` scaled to the 0..1000 range the diffusers time embedding expects."""
        return torch.as_tensor(timesteps).float() * 1000.0

    # ----------------------------------------------------------------- preconditioning
    def network_input(self, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """What the backbone sees of the state: ``x_t`` (eps) or ``c_in (x_t - y) / a_t`` (residual)."""
        if self.config.parametrization == "eps":
            return sample
        return residual_input(sample, y, *path_scales(self, timesteps, sample), self.config.sigma_data)

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """``x0_hat`` from the backbone's ``F``: Tweedie from ``eps_hat = F`` (eps) or the EDM form (residual)."""
        if self.config.parametrization == "eps":
            return x0_from_eps(self, out, sample, y, timesteps)
        return residual_output(out, sample, y, *path_scales(self, timesteps, sample), self.config.sigma_data)

    def score(self, x0_hat: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """``grad log p_t(x) = -(x_t - a_t x0_hat - (1 - a_t) y) / s_t^2``."""
        s = expand(self.marginal_std(timesteps), sample)
        return -eps_from_x0(self, x0_hat, sample, y, timesteps) / s

    # ----------------------------------------------------------------- reverse process
    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
             generator=None, return_dict: bool = True):
        """Reverse-diffusion predictor (Euler-Maruyama on the reverse SDE) over the grid gap ``dt``::

            x_mean = x - theta (y - x) dt + g^2 dt score,     x = x_mean + g sqrt(dt) z

        ``dt`` is the gap to the next time of the current grid (``t_eps`` after its last time).
        Returns ``x`` as ``prev_sample``, ``x_mean`` as ``prev_sample_mean`` (SGMSE+ returns it,
        noise-free, after the last step) and ``model_output`` (the x0 estimate) as
        ``pred_original_sample``.
        """
        index = int(torch.argmin((self.timesteps.cpu() - float(timestep)).abs()))
        dt = self.step_size(index)
        t = float(timestep)
        g = float(self.diffusion(t))
        score = self.score(model_output, sample, y, t)
        x_mean = sample - self.config.theta * (y - sample) * dt + g**2 * dt * score
        z = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        prev = x_mean + g * math.sqrt(dt) * z
        return self._output(prev, model_output, x_mean, return_dict)

    def correct(self, x0_hat: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
                snr: float = 0.5, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One annealed Langevin corrector step, ``eps = 2 (snr s_t)^2``::

            x_mean = x + eps score,     x = x_mean + sqrt(2 eps) z

        Returns ``(x, x_mean)``.
        """
        step = 2 * (snr * float(self.marginal_std(timestep))) ** 2
        x_mean = sample + step * self.score(x0_hat, sample, y, timestep)
        z = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        return x_mean + math.sqrt(2 * step) * z, x_mean

    def ode_velocity(self, x0_hat: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor) -> torch.Tensor:
        """Probability-flow ODE ``dx/dt = theta (y - x) - g^2/2 score``."""
        g = float(self.diffusion(timestep))
        return self.config.theta * (y - sample) - 0.5 * g**2 * self.score(x0_hat, sample, y, timestep)

    # ----------------------------------------------------------------- training
    def sample_training_timesteps(self, batch_size: int, device=None, generator=None) -> torch.Tensor:
        """``t ~ U(t_eps, 1)``."""
        u = torch.rand((batch_size,), generator=generator)
        return (self.config.t_eps + (1 - self.config.t_eps) * u).to(device)

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """Denoising score matching: ``E |eps_hat - z|^2`` (eps, with ``eps_hat`` implied by the x0
        estimate) or the EDM-weighted ``E (1/q^2 + 1/s_d^2) |x0_hat - x0|^2`` (residual), ``t ~ U(t_eps, 1)``."""
        t = self.sample_training_timesteps(x0.shape[0], device=x0.device, generator=generator)
        z = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.add_noise(x0, z, t, y=y)
        x0_hat = denoise(x_t, t)
        if self.config.parametrization == "eps":
            return torch.mean((eps_from_x0(self, x0_hat, x_t, y, t) - z) ** 2)
        weight = residual_weight(*path_scales(self, t, x0), self.config.sigma_data)
        return torch.mean(weight * (x0_hat - x0) ** 2)

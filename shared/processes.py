"""Residual-shift processes behind one diffusers-style scheduler interface.

A *residual-shift process* moves a clean signal ``x0`` toward a degraded observation ``y``
(instead of toward pure noise). Every process here is a diffusers scheduler: its configuration
is registered once (``ConfigMixin``), it saves and loads with ``save_pretrained`` /
``from_pretrained``, and it exposes the usual ``set_timesteps``, ``add_noise`` and ``step``,
each taking the degraded input ``y`` as an extra argument.

Interface shared by all processes (so samplers and training never special-case one):

* ``timesteps``              -- descending timesteps after ``set_timesteps``.
* ``add_noise(x0, y, noise, t)``  -- a draw from the marginal ``q(x_t | x0, y)``.
* ``prior_sample(y, generator)``  -- the starting point ``x_T`` of the reverse process.
* ``scale_model_input(x, t)``     -- the ``c_in(t)`` scaling of the network input.
* ``model_time(t)``               -- the time value fed to the backbone's embedding.
* ``step(x0_hat, t, x_t, y, ...)`` -- one reverse step given the network's ``x0`` estimate.
* ``sample_training_timesteps(n)`` and ``training_loss(...)`` -- the training objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor


@dataclass
class ProcessStepOutput(BaseOutput):
    """Result of one reverse step: the next sample and the network's clean estimate."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


def resshift_sqrt_etas(
    num_train_timesteps: int, min_noise_level: float, kappa: float, etas_end: float, power: float
) -> np.ndarray:
    """ResShift's exponential schedule of ``sqrt(eta_t)``, t = 1..T.

    ``sqrt(eta_t) = sqrt(eta_1) * b0 ** beta_t`` with
    ``beta_t = ((t-1)/(T-1)) ** p * (T-1)``,
    ``b0 = exp(log(sqrt(eta_T)/sqrt(eta_1)) / (T-1))``,
    ``sqrt(eta_1) = min(min_noise_level / kappa, min_noise_level)``, ``sqrt(eta_T) = etas_end``.
    """
    T = num_train_timesteps
    start = min(min_noise_level / kappa, min_noise_level)
    if T == 1:
        return np.array([etas_end], dtype=np.float64)
    b0 = math.exp(math.log(etas_end / start) / (T - 1))
    beta = np.linspace(0.0, 1.0, T) ** power * (T - 1)
    return start * np.power(b0, beta)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector ``(B,)`` (or a scalar) to broadcast against ``like``."""
    values = values.to(device=like.device, dtype=like.dtype)
    if values.ndim == 0:
        return values
    return values.reshape(values.shape + (1,) * (like.ndim - values.ndim))


class ResShiftScheduler(SchedulerMixin, ConfigMixin):
    """Discrete ResShift process (Yue et al. 2023) as a diffusers scheduler.

    Forward marginal, t = 1..T (stored 0-indexed: timestep ``i`` means ``eta_{i+1}``)::

        x_t = x0 + eta_t (y - x0) + kappa sqrt(eta_t) eps

    Reverse posterior with ``alpha_t = eta_t - eta_{t-1}`` and ``eta_0 = 0``::

        mean = (eta_{t-1}/eta_t) x_t + (alpha_t/eta_t) x0_hat
        var  = kappa^2 (eta_{t-1}/eta_t) alpha_t

    Deterministic (SinSR, DDIM-like) step with ``e0 = y - x0_hat``::

        x_{t-1} = x0_hat + eta_{t-1} e0 + sqrt(eta_{t-1}/eta_t) (x_t - x0_hat - eta_t e0)

    Because the marginals are defined for every t, any decreasing subset of timesteps is a valid
    Markov chain with ``alpha = eta_t - eta_s``: that is how ``set_timesteps(N < T)`` respaces.
    """

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 4,
        kappa: float = 2.0,
        min_noise_level: float = 0.2,
        etas_end: float = 0.99,
        power: float = 0.3,
    ):
        if num_train_timesteps < 1:
            raise ValueError("num_train_timesteps must be >= 1")
        if kappa <= 0:
            raise ValueError("kappa must be > 0")
        sqrt_etas = resshift_sqrt_etas(num_train_timesteps, min_noise_level, kappa, etas_end, power)
        self.sqrt_etas = torch.from_numpy(sqrt_etas)
        self.etas = self.sqrt_etas**2
        self.num_inference_steps: Optional[int] = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.long)

    # ----------------------------------------------------------------- schedule helpers
    def eta(self, timesteps) -> torch.Tensor:
        """``eta_t`` for 0-indexed timesteps; index -1 means ``eta_0 = 0``."""
        t = torch.as_tensor(timesteps, dtype=torch.long)
        out = self.etas[t.clamp(min=0).cpu()]
        return torch.where(t.cpu() < 0, torch.zeros_like(out), out)

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None) -> None:
        """Choose ``N`` of the ``T`` training timesteps, evenly spaced, always ending at t = 1."""
        T = self.config.num_train_timesteps
        n = T if num_inference_steps is None else int(num_inference_steps)
        if not 1 <= n <= T:
            raise ValueError(f"ResShift was trained with T={T}; steps must be in 1..{T}, got {n}")
        chosen = np.unique(np.round(np.linspace(T - 1, 0, n)).astype(np.int64))[::-1].copy()
        self.num_inference_steps = n
        self.timesteps = torch.from_numpy(chosen).to(device)

    def previous_timestep(self, timestep: int) -> int:
        """The next (smaller) timestep in the current inference schedule, or -1 at the end."""
        ts = [int(t) for t in self.timesteps]
        i = ts.index(int(timestep))
        return ts[i + 1] if i + 1 < len(ts) else -1

    # ----------------------------------------------------------------- forward process
    def add_noise(self, original_samples, y, noise, timesteps) -> torch.Tensor:
        """Sample ``q(x_t | x0, y) = N(x0 + eta_t (y - x0), kappa^2 eta_t I)``."""
        eta = _expand(self.eta(timesteps), original_samples)
        return original_samples + eta * (y - original_samples) + self.config.kappa * eta.sqrt() * noise

    def prior_sample(self, y: torch.Tensor, generator=None) -> torch.Tensor:
        """Start of the reverse process: ``x_T = y + kappa sqrt(eta_T) eps``."""
        eps = randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y + self.config.kappa * float(self.sqrt_etas[-1]) * eps

    def marginal_std(self, timesteps) -> torch.Tensor:
        """Standard deviation of ``x_t`` given ``(x0, y)``: ``kappa sqrt(eta_t)``."""
        return self.config.kappa * self.eta(timesteps).sqrt()

    def path_coefficients(self, timesteps) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_t, s_t) = (1 - eta_t, kappa sqrt(eta_t))``: ``x_t = a_t x0 + (1 - a_t) y + s_t eps``."""
        eta = self.eta(timesteps)
        return 1.0 - eta, self.config.kappa * eta.sqrt()

    def predict_x0(self, model_output: torch.Tensor, sample=None, y=None, timesteps=None) -> torch.Tensor:
        """The network already predicts ``x0``."""
        return model_output

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        """ResShift input normalisation ``c_in = 1 / sqrt(kappa^2 eta_t + 1)``."""
        if timestep is None:
            raise ValueError("ResShift needs the timestep to scale the model input")
        eta = _expand(self.eta(timestep), sample)
        return sample / torch.sqrt(self.config.kappa**2 * eta + 1.0)

    def model_time(self, timesteps) -> torch.Tensor:
        """The value given to the backbone's time embedding: the 0-indexed step as a float."""
        return torch.as_tensor(timesteps).float()

    # ----------------------------------------------------------------- reverse process
    def posterior_mean_variance(self, x0_hat, x_t, timestep, prev_timestep):
        """Mean and variance of ``q(x_s | x_t, x0_hat)`` for s = ``prev_timestep`` < t."""
        eta_t = float(self.eta(timestep))
        eta_s = float(self.eta(prev_timestep))
        alpha = eta_t - eta_s
        mean = (eta_s / eta_t) * x_t + (alpha / eta_t) * x0_hat
        var = self.config.kappa**2 * (eta_s / eta_t) * alpha
        return mean, var

    def step(
        self,
        model_output: torch.Tensor,
        timestep,
        sample: torch.Tensor,
        y: torch.Tensor,
        generator=None,
        deterministic: bool = False,
        return_dict: bool = True,
    ):
        """One reverse step from ``sample = x_t`` given ``model_output = x0_hat``.

        ``deterministic=False`` draws from the posterior; ``True`` takes the SinSR step.
        The last step (previous timestep -1, ``eta_0 = 0``) returns ``x0_hat`` exactly.
        """
        t = int(timestep)
        s = self.previous_timestep(t) if self.num_inference_steps is not None else t - 1
        x0_hat = model_output
        if s < 0:
            prev = x0_hat
        elif deterministic:
            eta_t, eta_s = float(self.eta(t)), float(self.eta(s))
            e0 = y - x0_hat
            prev = x0_hat + eta_s * e0 + math.sqrt(eta_s / eta_t) * (sample - x0_hat - eta_t * e0)
        else:
            mean, var = self.posterior_mean_variance(x0_hat, sample, t, s)
            noise = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
            prev = mean + math.sqrt(var) * noise
        if not return_dict:
            return (prev, x0_hat)
        return ProcessStepOutput(prev_sample=prev, pred_original_sample=x0_hat)

    # ----------------------------------------------------------------- training
    def sample_training_timesteps(self, batch_size: int, device=None, generator=None) -> torch.Tensor:
        """Uniform timesteps ``t ~ U{0..T-1}`` for training."""
        return torch.randint(
            0, self.config.num_train_timesteps, (batch_size,), generator=generator, device="cpu"
        ).to(device)

    def training_loss(
        self,
        denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x0: torch.Tensor,
        y: torch.Tensor,
        generator=None,
    ) -> torch.Tensor:
        """ResShift objective ``E_t,eps |f(x_t, t) - x0|^2`` with ``f`` predicting ``x0``."""
        t = self.sample_training_timesteps(x0.shape[0], device=x0.device, generator=generator)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.add_noise(x0, y, noise, t)
        return torch.mean((denoise(x_t, t) - x0) ** 2)

    def __len__(self) -> int:
        return self.config.num_train_timesteps


class GaussianDiffusion(SchedulerMixin, ConfigMixin):
    """Standard conditional DDPM (SR3-style baseline) behind the same interface.

    ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``; the network predicts ``eps``; ``y`` only
    conditions the network (the process itself ignores it) and sampling starts from ``N(0, I)``.
    Sampling uses diffusers' own solvers (:meth:`solver`: DDIM or DPM-Solver++), built from the
    same training schedule.
    """

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 beta_start: float = 1e-4, beta_end: float = 0.02):
        from diffusers import DDPMScheduler

        self.ddpm = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                                  beta_start=beta_start, beta_end=beta_end, prediction_type="epsilon")
        self.timesteps = self.ddpm.timesteps

    def add_noise(self, original_samples, y, noise, timesteps) -> torch.Tensor:
        """``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` (``y`` unused)."""
        return self.ddpm.add_noise(original_samples, noise, torch.as_tensor(timesteps, device=original_samples.device))

    def prior_sample(self, y: torch.Tensor, generator=None) -> torch.Tensor:
        return randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        return sample

    def model_time(self, timesteps) -> torch.Tensor:
        return torch.as_tensor(timesteps).float()

    def solver(self, name: str = "dpmsolver++"):
        """A diffusers sampler for this schedule: ``"ddim"`` or ``"dpmsolver++"``."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        if name == "ddim":
            return DDIMScheduler.from_config(self.ddpm.config)
        if name == "dpmsolver++":
            return DPMSolverMultistepScheduler.from_config(self.ddpm.config, algorithm_type="dpmsolver++")
        raise ValueError(f"unknown solver {name!r}; choose 'ddim' or 'dpmsolver++'")

    def training_loss(self, denoise, x0, y, generator=None) -> torch.Tensor:
        """``E_t,eps |eps_theta(x_t, t) - eps|^2`` with ``t ~ U{0..N-1}``."""
        n = self.config.num_train_timesteps
        t = torch.randint(0, n, (x0.shape[0],), generator=generator).to(x0.device)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        return torch.mean((denoise(self.add_noise(x0, y, noise, t), t) - noise) ** 2)

    def __len__(self) -> int:
        return self.config.num_train_timesteps


class DirectPrediction(SchedulerMixin, ConfigMixin):
    """The degenerate "process" of a predictive (regression) model: no noise, one step.

    ``x_t = y`` at the single timestep 0; the network maps ``y`` straight to ``x0_hat`` and is
    trained with ``|f(y) - x0|^2``. It exists so a predictive baseline (and StoRM's first stage)
    trains, saves and samples through exactly the same code as the diffusion models.
    """

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1):
        self.timesteps = torch.zeros(1, dtype=torch.long)
        self.num_inference_steps: Optional[int] = 1

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None) -> None:
        if num_inference_steps not in (None, 1):
            raise ValueError("a predictive model takes exactly one step")
        self.timesteps = torch.zeros(1, dtype=torch.long, device=device)

    def add_noise(self, original_samples, y, noise, timesteps) -> torch.Tensor:
        return y

    def prior_sample(self, y: torch.Tensor, generator=None) -> torch.Tensor:
        return y

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        return sample

    def model_time(self, timesteps) -> torch.Tensor:
        return torch.as_tensor(timesteps).float()

    def step(self, model_output, timestep, sample, y, generator=None, deterministic: bool = False,
             return_dict: bool = True):
        if not return_dict:
            return (model_output, model_output)
        return ProcessStepOutput(prev_sample=model_output, pred_original_sample=model_output)

    def training_loss(self, denoise, x0, y, generator=None) -> torch.Tensor:
        """``|f(y, 0) - x0|^2``."""
        t = torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device)
        return torch.mean((denoise(y, t) - x0) ** 2)

    def __len__(self) -> int:
        return 1

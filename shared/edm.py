"""EDM (Karras et al. 2022) on the residual ``x0 - y``: the process of CorrDiff's diffusion stage.

The state is the clean data plus variance-exploding noise, around the observation's estimate ``y`` (CorrDiff's
regression mean)::

    x_sigma = x0 + sigma eps          (path (a, b, s) = (1, 0, sigma); prior x_max = y + sigma_max eps)

so the network models the residual ``r = x0 - y`` from noise, with EDM's preconditioning of that residual
(:mod:`shared.preconditioning`, path ``a = 1``, ``s = sigma``)::

    x0_hat = y + c_skip (x - y) + c_out F(c_in (x - y), c_noise)
    c_skip = s_d^2 / (sigma^2 + s_d^2),  c_out = sigma s_d / sqrt(sigma^2 + s_d^2),  c_in = 1 / sqrt(sigma^2 + s_d^2)

trained with ``ln sigma ~ N(P_mean, P_std^2)`` and the weight ``lambda(sigma) = (sigma^2 + s_d^2) / (sigma s_d)^2``
on ``|x0_hat - x0|^2``. Timesteps are the noise levels ``sigma`` themselves (floats, descending):
``set_timesteps(N)`` gives Karras's grid ``sigma_i = (sigma_max^(1/rho) + i / (N - 1) (sigma_min^(1/rho) -
sigma_max^(1/rho)))^rho``, ``i = 0 .. N-1``, after which the sampler lands on ``sigma = 0``; the default
sampler is Heun's (:func:`shared.samplers.sample_heun`, ``2N - 1`` evaluations: EDM's 18 steps are 35).
The network's time input is ``ln sigma`` mapped linearly from ``[ln sigma_min, ln sigma_max]`` onto
``[0, 1000]`` (the range of the diffusers time embedding). Defaults are EDM's for ``s_d = 0.5``; scale
``sigma_min``, ``sigma_max`` and ``exp(P_mean)`` with ``s_d`` for data of another scale.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.utils.torch_utils import randn_tensor

from .preconditioning import path_scales, residual_input, residual_output, residual_weight
from .processes import ProcessScheduler
from .protocol import Denoise, expand


class EDMScheduler(ProcessScheduler):
    """EDM's variance-exploding process on the residual ``x0 - y`` (module docstring)."""

    default_sampler = "heun"

    @register_to_config
    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, sigma_data: float = 0.5, rho: float = 7.0,
                 p_mean: float = -1.2, p_std: float = 1.2, num_train_timesteps: int = 18):
        if not 0 < sigma_min < sigma_max:
            raise ValueError("need 0 < sigma_min < sigma_max")
        if sigma_data <= 0 or rho <= 0 or p_std <= 0:
            raise ValueError("sigma_data, rho and p_std must be > 0")
        self.num_inference_steps: Optional[int] = None
        self.timesteps = self.karras_sigmas(num_train_timesteps)

    # ----------------------------------------------------------------- schedule
    def karras_sigmas(self, n: int, start: Optional[float] = None) -> torch.Tensor:
        """``n`` noise levels from ``start`` (default ``sigma_max``) down to ``sigma_min``, Karras spacing."""
        c = self.config
        top = c.sigma_max if start is None else float(start)
        if n == 1:
            return torch.tensor([top], dtype=torch.float64)
        i = torch.arange(n, dtype=torch.float64) / (n - 1)
        return (top ** (1 / c.rho) + i * (c.sigma_min ** (1 / c.rho) - top ** (1 / c.rho))) ** c.rho

    @property
    def init_noise_sigma(self) -> float:
        return float(self.config.sigma_max)

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *, start=None) -> None:
        n = int(num_inference_steps or self.config.num_train_timesteps)
        if n < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {n}")
        self.num_inference_steps = n
        self.timesteps = self.karras_sigmas(n, start).to(torch.float32).to(device)

    def path_coefficients(self, timesteps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(1, 0, sigma)``: ``x_sigma = x0 + sigma eps``."""
        s = torch.as_tensor(timesteps, dtype=torch.float32)
        return torch.ones_like(s), torch.zeros_like(s), s

    def add_noise(self, original_samples, noise, timesteps, *, y) -> torch.Tensor:
        return original_samples + expand(timesteps, original_samples) * noise

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep=None) -> torch.Tensor:
        """``y + sigma eps`` at ``timestep`` (default ``sigma_max``)."""
        sigma = self.config.sigma_max if timestep is None else float(timestep)
        return y + sigma * randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)

    # ----------------------------------------------------------------- preconditioning
    def model_time(self, timesteps) -> torch.Tensor:
        """``1000 (ln sigma - ln sigma_min) / (ln sigma_max - ln sigma_min)``."""
        c = self.config
        lo, hi = math.log(c.sigma_min), math.log(c.sigma_max)
        return 1000.0 * (torch.log(torch.as_tensor(timesteps, dtype=torch.float32)) - lo) / (hi - lo)

    def network_input(self, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        return residual_input(sample, y, *path_scales(self, timesteps, sample), self.config.sigma_data)

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        return residual_output(out, sample, y, *path_scales(self, timesteps, sample), self.config.sigma_data)

    # ----------------------------------------------------------------- reverse process
    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
             generator=None, return_dict: bool = True):
        """Euler step of the probability-flow ODE ``dx/dsigma = (x - x0_hat) / sigma`` to the next grid
        level (0 after the last): ``x' = x0_hat + (sigma' / sigma) (x - x0_hat)``."""
        sigmas = self.timesteps.cpu()
        index = int(torch.argmin((sigmas - float(timestep)).abs()))
        nxt = float(sigmas[index + 1]) if index + 1 < len(sigmas) else 0.0
        prev = model_output + (nxt / float(timestep)) * (sample - model_output)
        return self._output(prev, model_output, None, return_dict)

    # ----------------------------------------------------------------- training
    def sample_training_timesteps(self, batch_size: int, device=None, generator=None) -> torch.Tensor:
        """``sigma = exp(P_mean + P_std n)``, ``n ~ N(0, 1)``."""
        n = torch.randn((batch_size,), generator=generator)
        return torch.exp(self.config.p_mean + self.config.p_std * n).to(device)

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """``E lambda(sigma) |x0_hat - x0|^2`` with ``lambda = (sigma^2 + s_d^2) / (sigma s_d)^2``."""
        sigma = self.sample_training_timesteps(x0.shape[0], device=x0.device, generator=generator)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x0_hat = denoise(self.add_noise(x0, noise, sigma, y=y), sigma)
        weight = residual_weight(*path_scales(self, sigma, x0), self.config.sigma_data)
        return torch.mean(weight * (x0_hat - x0) ** 2)

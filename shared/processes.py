"""Discrete processes behind the core contract (:mod:`shared.protocol`), as diffusers schedulers.

* :class:`ResShiftScheduler` -- residual shifting from ``x0`` toward the degraded ``y`` (ResShift).
* :class:`GaussianDiffusion` -- the standard conditional DDPM (SR3-style baseline), sampled with a
  diffusers solver.
* :class:`DirectPrediction`  -- the degenerate one-step "process" of a predictive (regression) model.

The continuous OU SDE of speech lives in :mod:`shared.sde`. Every process registers its
configuration once (``ConfigMixin``), saves and loads with ``save_pretrained`` /
``from_pretrained``, and takes the observation ``y`` as a keyword-only argument.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

from .complex import pair_magnitude
from .preconditioning import path_scales, residual_input, residual_output, residual_weight
from .protocol import Denoise, ProcessStepOutput, eps_from_x0, expand, path_at, x0_from_eps

__all__ = ["ProcessScheduler", "ResShiftScheduler", "GaussianDiffusion", "DirectPrediction", "ProcessStepOutput",
           "resshift_sqrt_etas"]


class ProcessScheduler(SchedulerMixin, ConfigMixin):
    """Base of the suite's processes: diffusers plumbing and the protocol's identity defaults.

    ``network_input``/``network_output`` default to the identity (the backbone sees ``x_t`` and
    predicts ``x0``); processes with their own preconditioning override them.
    """

    config_name = "scheduler_config.json"
    order = 1
    #: names of diffusers scheduler classes that read the same configuration (``compatibles``).
    _compatibles: list[str] = []
    #: the :data:`shared.samplers.SAMPLERS` entry :func:`shared.samplers.sample` uses by default.
    default_sampler = "posterior"

    @classmethod
    def _get_compatibles(cls) -> list[type]:
        import diffusers

        return [cls] + [getattr(diffusers, name) for name in cls._compatibles if hasattr(diffusers, name)]

    def _output(self, prev: torch.Tensor, x0_hat: torch.Tensor, mean: Optional[torch.Tensor], return_dict: bool):
        if not return_dict:
            return (prev, x0_hat) if mean is None else (prev, x0_hat, mean)
        return ProcessStepOutput(prev_sample=prev, pred_original_sample=x0_hat,
                                 prev_sample_mean=prev if mean is None else mean)

    def network_input(self, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """What the backbone sees of the state (default: ``x_t`` itself)."""
        return sample

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """The x0 estimate from the backbone's output (default: the output is ``x0``)."""
        return out

    def model_time(self, timesteps) -> torch.Tensor:
        """The value given to the backbone's time embedding (default: the timestep as a float)."""
        return torch.as_tensor(timesteps).float()

    def __len__(self) -> int:
        return self.config.num_train_timesteps


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


class ResShiftScheduler(ProcessScheduler):
    """Discrete ResShift process (Yue et al. 2023) as a diffusers scheduler.

    Forward marginal, t = 1..T (stored 0-indexed: timestep ``i`` means ``eta_{i+1}``)::

        x_t = x0 + eta_t (y - x0) + kappa sqrt(eta_t) eps       (a, b, s) = (1 - eta, eta, kappa sqrt(eta))

    Reverse posterior with ``alpha_t = eta_t - eta_{t-1}`` and ``eta_0 = 0``::

        mean = (eta_{t-1}/eta_t) x_t + (alpha_t/eta_t) x0_hat
        var  = kappa^2 (eta_{t-1}/eta_t) alpha_t

    Deterministic (SinSR, DDIM-like) step with ``e0 = y - x0_hat``::

        x_{t-1} = x0_hat + eta_{t-1} e0 + sqrt(eta_{t-1}/eta_t) (x_t - x0_hat - eta_t e0)

    Because the marginals are defined for every t, any decreasing subset of timesteps is a valid
    Markov chain with ``alpha = eta_t - eta_s``: that is how ``set_timesteps(N < T)`` respaces.

    Preconditioning: by default (ResShift's) the backbone sees ``c_in x_t`` with
    ``c_in = 1 / sqrt(kappa^2 eta_t + 1)`` and predicts ``x0`` (with the denoiser's ``skip``, ``x0 - y``),
    trained with ``|x0_hat - x0|^2``. With ``sigma_data`` (the scale ``s_d`` of ``x0 - y``) it is EDM's
    preconditioning of the residual (:mod:`shared.preconditioning`, path ``a = 1 - eta``, ``s = kappa
    sqrt(eta)``): input ``c_in (x_t - y) / a``, ``x0_hat = y + c_skip (x_t - y) / a + c_out F``, loss weight
    ``1 / c_out^2``; use it (with the denoiser's ``skip = 0``) when the residual is small next to ``y``.

    Reverse variance: the posterior above plugs in the x0 *estimate* and so ignores how uncertain x0 still
    is given ``x_t``; in a few steps that shrinks the samples' spread (to half the data's standard deviation
    in 4 steps for Gaussian data with the exact denoiser). With ``x0_variance`` (``Gamma_t``, per timestep,
    the mean square error of the x0 estimate at ``t``: :meth:`x0_error`) the stochastic step uses
    Analytic-DPM's optimal variance (Bao et al. 2022), exact for Gaussian data::

        var = kappa^2 (eta_s/eta_t) alpha + (alpha/eta_t)^2 Gamma_t
    """

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 4,
        kappa: float = 2.0,
        min_noise_level: float = 0.2,
        etas_end: float = 0.99,
        power: float = 0.3,
        sigma_data: Optional[float] = None,
        x0_variance: Optional[list[float]] = None,
    ):
        if num_train_timesteps < 1:
            raise ValueError("num_train_timesteps must be >= 1")
        if kappa <= 0:
            raise ValueError("kappa must be > 0")
        if sigma_data is not None and sigma_data <= 0:
            raise ValueError("sigma_data must be > 0 (or None for ResShift's own preconditioning)")
        if x0_variance is not None and (len(x0_variance) != num_train_timesteps or min(x0_variance) < 0):
            raise ValueError(f"x0_variance needs {num_train_timesteps} values >= 0 (one per timestep)")
        sqrt_etas = resshift_sqrt_etas(num_train_timesteps, min_noise_level, kappa, etas_end, power)
        self.sqrt_etas = torch.from_numpy(sqrt_etas)
        self.etas = self.sqrt_etas**2
        self.num_inference_steps: Optional[int] = None
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1, dtype=torch.long)

    # ----------------------------------------------------------------- schedule
    @property
    def init_noise_sigma(self) -> float:
        """Standard deviation of the prior around ``y``: ``kappa sqrt(eta_T)``."""
        return self.config.kappa * float(self.sqrt_etas[-1])

    def eta(self, timesteps) -> torch.Tensor:
        """``eta_t`` for 0-indexed timesteps; index -1 means ``eta_0 = 0``."""
        t = torch.as_tensor(timesteps).long().cpu()
        out = self.etas[t.clamp(min=0)]
        return torch.where(t < 0, torch.zeros_like(out), out)

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *, start: Optional[int] = None):
        """Choose ``N`` timesteps from ``start`` (default ``T - 1``) down to 0, evenly spaced."""
        T = self.config.num_train_timesteps
        top = T - 1 if start is None else int(start)
        if not 0 <= top < T:
            raise ValueError(f"start must be in 0..{T - 1}, got {start}")
        n = top + 1 if num_inference_steps is None else int(num_inference_steps)
        if not 1 <= n <= top + 1:
            raise ValueError(f"ResShift was trained with T={T}; steps must be in 1..{top + 1}, got {n}")
        chosen = np.unique(np.round(np.linspace(top, 0, n)).astype(np.int64))[::-1].copy()
        self.num_inference_steps = n
        self.timesteps = torch.from_numpy(chosen).to(device)

    def previous_timestep(self, timestep) -> int:
        """The next (smaller) timestep of the current schedule (``t - 1`` before ``set_timesteps``), -1 at the end."""
        t = int(timestep)
        if self.num_inference_steps is None:
            return t - 1
        ts = [int(v) for v in self.timesteps]
        i = ts.index(t)
        return ts[i + 1] if i + 1 < len(ts) else -1

    def path_coefficients(self, timesteps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a_t, b_t, s_t) = (1 - eta_t, eta_t, kappa sqrt(eta_t))``."""
        eta = self.eta(timesteps)
        return 1.0 - eta, eta, self.config.kappa * eta.sqrt()

    # ----------------------------------------------------------------- forward process
    def add_noise(self, original_samples, noise, timesteps, *, y) -> torch.Tensor:
        """Sample ``q(x_t | x0, y) = N(x0 + eta_t (y - x0), kappa^2 eta_t I)``."""
        eta = expand(self.eta(timesteps), original_samples)
        return original_samples + eta * (y - original_samples) + self.config.kappa * eta.sqrt() * noise

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep: Optional[int] = None) -> torch.Tensor:
        """Start of the reverse process: ``x_t = y + kappa sqrt(eta_t) eps`` at ``t = T`` (or ``timestep``)."""
        t = self.config.num_train_timesteps - 1 if timestep is None else int(timestep)
        eps = randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return y + self.config.kappa * float(self.sqrt_etas[t]) * eps

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        """ResShift input normalisation ``c_in = 1 / sqrt(kappa^2 eta_t + 1)``."""
        if timestep is None:
            raise ValueError("ResShift needs the timestep to scale the model input")
        eta = expand(self.eta(timestep), sample)
        return sample / torch.sqrt(self.config.kappa**2 * eta + 1.0)

    def network_input(self, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """``c_in(t) x_t`` (:meth:`scale_model_input`), or ``c_in (x_t - y) / a`` with ``sigma_data``."""
        if self.config.sigma_data is None:
            return self.scale_model_input(sample, timesteps)
        return residual_input(sample, y, *path_scales(self, timesteps, sample), self.config.sigma_data)

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """``x0_hat``: the output itself, or ``y + c_skip (x_t - y) / a + c_out F`` with ``sigma_data``."""
        if self.config.sigma_data is None:
            return out
        return residual_output(out, sample, y, *path_scales(self, timesteps, sample), self.config.sigma_data)

    # ----------------------------------------------------------------- reverse process
    def posterior_mean_variance(self, x0_hat, x_t, timestep, prev_timestep):
        """Mean and variance of ``q(x_s | x_t, x0_hat)`` for s = ``prev_timestep`` < t, the variance
        widened by ``(alpha/eta_t)^2 Gamma_t`` when ``x0_variance`` is set (class docstring)."""
        eta_t = float(self.eta(timestep))
        eta_s = float(self.eta(prev_timestep))
        alpha = eta_t - eta_s
        mean = (eta_s / eta_t) * x_t + (alpha / eta_t) * x0_hat
        var = self.config.kappa**2 * (eta_s / eta_t) * alpha
        if self.config.x0_variance is not None:
            var += (alpha / eta_t) ** 2 * float(self.config.x0_variance[int(timestep)])
        return mean, var

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
             generator=None, deterministic: bool = False, return_dict: bool = True):
        """One reverse step from ``sample = x_t`` given ``model_output = x0_hat``.

        ``deterministic=False`` draws from the posterior; ``True`` takes the SinSR step.
        The last step (previous timestep -1, ``eta_0 = 0``) returns ``x0_hat`` exactly.
        """
        t = int(timestep)
        s = self.previous_timestep(t)
        x0_hat = model_output
        mean = None
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
        return self._output(prev, x0_hat, mean, return_dict)

    # ----------------------------------------------------------------- training
    def sample_training_timesteps(self, batch_size: int, device=None, generator=None) -> torch.Tensor:
        """Uniform timesteps ``t ~ U{0..T-1}`` for training."""
        return torch.randint(
            0, self.config.num_train_timesteps, (batch_size,), generator=generator, device="cpu"
        ).to(device)

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """ResShift objective ``E_t,eps |f(x_t, t) - x0|^2`` with ``f`` predicting ``x0``; with ``sigma_data``
        each term weighted by EDM's ``1 / c_out(t)^2``."""
        t = self.sample_training_timesteps(x0.shape[0], device=x0.device, generator=generator)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.add_noise(x0, noise, t, y=y)
        error = (denoise(x_t, t) - x0) ** 2
        if self.config.sigma_data is not None:
            error = residual_weight(*path_scales(self, t, x0), self.config.sigma_data) * error
        return torch.mean(error)

    @torch.no_grad()
    def x0_error(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """``Gamma_t = mean |x0_hat(x_t) - x0|^2`` for every timestep t on one batch (Analytic-DPM's
        Monte-Carlo estimate of the x0 estimate's error, for ``x0_variance``): a tensor of length T."""
        T = self.config.num_train_timesteps
        out = torch.zeros(T, dtype=torch.float64)
        for t in range(T):
            steps = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)
            noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            out[t] = torch.mean((denoise(self.add_noise(x0, noise, steps, y=y), steps) - x0).double() ** 2)
        return out


class GaussianDiffusion(ProcessScheduler):
    """Standard conditional DDPM (SR3-style baseline) behind the same contract.

    ``x_t = a_t x0 + s_t eps`` with ``a_t = sqrt(abar_t)``, ``s_t = sqrt(1 - abar_t)`` (path ``(a, 0, s)``).
    The backbone predicts (``prediction_type``, diffusers' names) either ``eps`` (SR3, DDPM), which
    :meth:`network_output` turns into Tweedie's ``x0_hat = (x_t - s_t eps_hat) / a_t``, trained with
    ``|eps_hat - eps|^2``; or the velocity ``v = a_t eps - s_t x0`` (Salimans & Ho 2022), giving
    ``x0_hat = a_t x_t - s_t v_hat``, trained with ``|v_hat - v|^2 = |x0_hat - x0|^2 / s_t^2``. With eps the
    x0 error is the eps error times ``s_t / a_t`` (156 at ``t = T`` for the linear schedule), so a network
    that copies ``x_t`` less exactly than that ratio demands drifts off its data along the reverse path;
    with v it is at most the v error. ``y`` only conditions the network;
    sampling starts from ``N(0, I)``. Reverse steps are those of a diffusers solver (``solver``:
    ``"ddim"`` or ``"dpmsolver++"``) built from the same training schedule and fed the x0 estimate.

    ``clip_sample_range`` ``r`` (diffusers' ``clip_sample`` convention, as SR3 clips to the data range):
    each step's ``x0_hat`` is clipped to ``[-r, r]`` before the solver uses it. At high noise
    ``x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)`` multiplies the eps error by up to
    ``1 / sqrt(abar_T)`` (156 for the linear schedule), so an unclipped first estimate can be far outside
    the data. Sampling only: the training loss never sees the clip.
    """

    _compatibles = ["DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"]
    SOLVERS = ("ddim", "dpmsolver++")
    PREDICTION_TYPES = ("epsilon", "v_prediction")

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 beta_start: float = 1e-4, beta_end: float = 0.02, solver: str = "dpmsolver++",
                 clip_sample_range: Optional[float] = None, prediction_type: str = "epsilon"):
        from diffusers import DDPMScheduler

        if prediction_type not in self.PREDICTION_TYPES:
            raise ValueError(f"unknown prediction_type {prediction_type!r}; choose 'epsilon' or 'v_prediction'")
        if solver not in self.SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; choose 'ddim' or 'dpmsolver++'")
        if clip_sample_range is not None and not clip_sample_range > 0:
            raise ValueError(f"clip_sample_range must be > 0 (or None), got {clip_sample_range}")
        self.ddpm = DDPMScheduler(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                                  beta_start=beta_start, beta_end=beta_end, prediction_type="epsilon")
        self.alphas_cumprod = self.ddpm.alphas_cumprod.double()
        self.reverse = self.make_solver(solver)
        self.num_inference_steps: Optional[int] = None
        self.timesteps = self.ddpm.timesteps

    @property
    def init_noise_sigma(self) -> float:
        return 1.0

    def make_solver(self, name: str):
        """A diffusers solver for this schedule that takes x0 estimates (``prediction_type="sample"``)."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        if name == "ddim":
            return DDIMScheduler.from_config(self.ddpm.config, prediction_type="sample")
        if name == "dpmsolver++":
            return DPMSolverMultistepScheduler.from_config(self.ddpm.config, algorithm_type="dpmsolver++",
                                                           prediction_type="sample")
        raise ValueError(f"unknown solver {name!r}; choose 'ddim' or 'dpmsolver++'")

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *, start: Optional[int] = None):
        """The solver's grid of ``N`` steps (default 25); ``start`` keeps only timesteps ``<= start``."""
        self.reverse.set_timesteps(25 if num_inference_steps is None else int(num_inference_steps), device=device)
        ts = self.reverse.timesteps
        self.timesteps = ts if start is None else ts[ts <= int(start)]
        self.num_inference_steps = len(self.timesteps)

    def path_coefficients(self, timesteps) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(sqrt(abar_t), 0, sqrt(1 - abar_t))``."""
        abar = self.alphas_cumprod[torch.as_tensor(timesteps).long().cpu()]
        return abar.sqrt(), torch.zeros_like(abar), (1 - abar).sqrt()

    def add_noise(self, original_samples, noise, timesteps, *, y) -> torch.Tensor:
        """``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` (``y`` unused)."""
        return self.ddpm.add_noise(original_samples, noise, torch.as_tensor(timesteps, device=original_samples.device))

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep: Optional[int] = None) -> torch.Tensor:
        """``N(0, I)``; from ``timestep`` (SDEdit) the marginal with ``x0 = y``."""
        eps = randn_tensor(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        return eps if timestep is None else self.add_noise(y, eps, timestep, y=y)

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """``x0_hat`` from the backbone's ``eps_hat`` (Tweedie) or ``v_hat`` (``a_t x_t - s_t v_hat``)."""
        if self.config.prediction_type == "v_prediction":
            a, _, s = path_at(self, timesteps, sample)
            return a * sample - s * out
        return x0_from_eps(self, out, sample, y, timesteps)

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
             generator=None, return_dict: bool = True):
        """One step of the diffusers solver given ``model_output = x0_hat`` (clipped: ``clip_sample_range``)."""
        r = self.config.clip_sample_range
        if r is not None:
            model_output = model_output.clamp(-r, r)
        out = self.reverse.step(model_output, timestep, sample, generator=generator)
        return self._output(out.prev_sample, model_output, None, return_dict)

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """``E_t,eps |eps_hat - eps|^2`` (or ``|v_hat - v|^2``) with ``t ~ U{0..N-1}``, the prediction implied by
        the x0 estimate."""
        n = self.config.num_train_timesteps
        t = torch.randint(0, n, (x0.shape[0],), generator=generator).to(x0.device)
        noise = randn_tensor(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.add_noise(x0, noise, t, y=y)
        x0_hat = denoise(x_t, t)
        if self.config.prediction_type == "v_prediction":
            _, _, s = path_at(self, t, x_t)
            return torch.mean(((x0_hat - x0) / s) ** 2)
        return torch.mean((eps_from_x0(self, x0_hat, x_t, y, t) - noise) ** 2)


class DirectPrediction(ProcessScheduler):
    """The degenerate "process" of a predictive (regression) model: no noise, one step.

    ``x_t = y`` at the single timestep 0; the network maps ``y`` straight to ``x0_hat`` and is
    trained with ``|f(y) - x0|^2``. It exists so a predictive baseline (and StoRM's first stage)
    trains, saves and samples through exactly the same code as the diffusion models.

    For complex data stored as channel pairs (:mod:`shared.complex`), ``magnitude_weight`` ``a`` mixes in
    the magnitude error (Braun & Tashev 2021, "A consolidated view of loss functions for supervised deep
    learning-based speech enhancement")::

        L = (1 - a) |f(y) - x0|^2 + a (|f(y)| - |x0|)^2

    The complex term alone is minimised by the posterior mean, whose magnitude shrinks wherever the phase
    is uncertain; the magnitude term does not see the phase, so it keeps the magnitude.
    """

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1, magnitude_weight: float = 0.0):
        if not 0.0 <= magnitude_weight <= 1.0:
            raise ValueError(f"magnitude_weight must be in [0, 1], got {magnitude_weight}")
        self.timesteps = torch.zeros(1, dtype=torch.long)
        self.num_inference_steps: Optional[int] = 1

    @property
    def init_noise_sigma(self) -> float:
        return 0.0

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *, start: Optional[int] = None):
        if num_inference_steps not in (None, 1) or start not in (None, 0):
            raise ValueError("a predictive model takes exactly one step, from timestep 0")
        self.timesteps = torch.zeros(1, dtype=torch.long, device=device)

    def add_noise(self, original_samples, noise, timesteps, *, y) -> torch.Tensor:
        return y

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep=None) -> torch.Tensor:
        return y

    def step(self, model_output, timestep, sample, *, y, generator=None, return_dict: bool = True):
        return self._output(model_output, model_output, None, return_dict)

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """``(1 - a) |f(y, 0) - x0|^2 + a (|f(y, 0)| - |x0|)^2``, ``a = magnitude_weight``."""
        t = torch.zeros(x0.shape[0], dtype=torch.long, device=x0.device)
        estimate = denoise(y, t).float()
        loss = torch.mean((estimate - x0) ** 2)
        a = self.config.magnitude_weight
        if a > 0:
            loss = (1 - a) * loss + a * torch.mean((pair_magnitude(estimate) - pair_magnitude(x0)) ** 2)
        return loss

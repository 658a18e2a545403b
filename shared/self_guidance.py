"""Observation self-guidance (TSDiff): steer an unconditional model toward observed values at inference.

TSDiff (Kollovieh et al. 2023, "Predict, Refine, Synthesize: Self-Guiding Diffusion Models for
Probabilistic Time Series Forecasting", Sec. 3.1 "observation self-guidance"; reference code
``amazon-science/unconditional-time-series-diffusion``, ``sampler/observation_guidance.py``) conditions an
unconditionally trained model on observed values ``y_obs`` (mask ``m``) by classifier guidance whose
"classifier" is the model itself::

    grad log p_t(x_t | y_obs) ~= grad log p_t(x_t) + scale * grad_{x_t} log p_t(y_obs | x_t)
    log p_t(y_obs | x_t)      := -L(x0_hat(x_t, t))         (up to a constant)

with ``x0_hat(x_t, t)`` the one-step x0 estimate (TSDiff's ``fast_denoise``, Tweedie's formula) and ``L``
one of TSDiff's two energies, summed over the observed entries (TSDiff sums, it does not average):

* ``"mse"``      (Gaussian observation model):          ``L = sum m (x0_hat - y_obs)^2``
* ``"quantile"`` (asymmetric Laplace, level ``q``):      ``L = sum m max(q e, (q - 1) e)``, ``e = y_obs - x0_hat``

The gradient is taken **w.r.t. the noisy state** ``x_t`` *through the denoiser* (vector-Jacobian product
``g = J_{x0_hat}(x_t)^T dL/dx0_hat``), not w.r.t. ``x0_hat``.

Where the gradient goes, for any Gaussian path ``x_t = a_t x0 + b_t y + s_t eps``
(:class:`shared.protocol.GaussianPath`). Tweedie's formula links the x0 estimate, the noise estimate and the
score: ``x0_hat = (x_t - b_t y - s_t eps_hat) / a_t = (x_t - b_t y + s_t^2 score) / a_t``. Guiding the
score, ``score' = score - scale g``, is therefore the same as::

    eps_hat' = eps_hat + scale * s_t * g                     (TSDiff's DDIM guidance, exactly)
    x0_hat'  = x0_hat  - scale * (s_t^2 / a_t) * g           (what this module returns)

TSDiff's ``DDIMGuidance`` replaces the network's noise by ``eps - scale sqrt(1 - abar_t) (-g)``: with the
DDPM path ``(a, b, s) = (sqrt(abar), 0, sqrt(1 - abar))`` that is the first line, so ``scale`` here is
TSDiff's ``scale`` and the x0 form is its exact translation. Because every sampler of the suite (and every
process's ``step``, ``score``, ``correct`` and ``ode_velocity``) consumes the x0 estimate, returning
``x0_hat'`` guides ResShift's posterior, the DDPM solvers, DDIM/SinSR, SGMSE+'s predictor-corrector and the
probability-flow ODE without touching any of them. (TSDiff's ``DDPMGuidance`` instead adds
``scale sigma_t^2 (-g)`` to the sample after the ancestral step (``sigma_t^2`` the posterior variance, ``g``
taken at the new sample with the old ``t``);
through the x0 form the DDPM mean moves by ``scale (beta_t / sqrt(alpha_t)) (-g)``: the same direction, a
step larger by ``(1 - abar_t) / (sqrt(alpha_t) (1 - abar_{t-1}))`` >= 1, so its ``scale`` is not ours.)

It is exact when the approximation is: for a linear-Gaussian model (``x0 ~ N(mu, v0)``, the exact Tweedie
denoiser, ``y_obs = x0 + N(0, tau^2)`` on the observed entries) ``p_t(y_obs | x_t) = N(x0_hat, v_t + tau^2)``
with ``v_t = Var(x0 | x_t)``, so ``scale = 1 / (2 (v_t + tau^2))`` (a callable ``scale(t)``) makes
``x0_hat'`` the exact posterior mean ``E[x0 | x_t, y_obs]`` (tests/test_self_guidance.py checks it for
every registered Gaussian path).

Implementation: a *denoiser wrapper*, not a sampler callback. The samplers run under ``torch.no_grad`` and
the callback sees ``x0_hat`` without its graph, so a callback would need a second forward; the wrapper
enables grad locally (``torch.enable_grad``), runs the denoiser once, takes one backward
(``torch.autograd.grad`` w.r.t. ``x_t`` only: no parameter ``.grad`` is touched) and returns a detached
``x0_hat'``. **Cost**: one guided evaluation = one forward + one backward of the network (TSDiff's code
spends two forwards + one backward: it calls the network again inside the energy), with the forward's
activations kept until the backward; samplers still count it as one network evaluation. Counters
:attr:`ObservationGuidance.evaluations` and :attr:`ObservationGuidance.backward_passes` record what was
spent. ``scale == 0`` skips the backward and returns the plain estimate exactly.

The sum over the batch is harmless: items do not interact in the denoiser (in ``eval()`` mode), so each
item's gradient comes from its own loss. TSDiff's quantile guidance gives each of the ``N`` samples of
a series its own level ``q_k = k / (N + 1)``: pass ``quantile=sample_quantiles(N, B)`` with the batch laid
out as ``observed.repeat_interleave(N, 0)``. Nothing here knows what the data are.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch

from .protocol import Denoise, GaussianPath, expand, path_at

__all__ = ["ObservationGuidance", "observation_loss", "observation_loss_grad", "guidance_coefficient",
           "sample_quantiles", "KINDS"]

KINDS = ("mse", "quantile")

#: a constant scale, or ``scale(t) -> (B,)`` (or a scalar) for a schedule over the timesteps
Scale = Union[float, Callable[[torch.Tensor], torch.Tensor]]


def _check_quantile(quantile) -> torch.Tensor:
    q = torch.as_tensor(quantile, dtype=torch.float64)
    if not bool(((q > 0) & (q < 1)).all()):
        raise ValueError(f"quantile levels must be in (0, 1), got {quantile}")
    return q


def observation_loss(x0_hat: torch.Tensor, observed: torch.Tensor, mask: torch.Tensor, kind: str = "mse",
                     quantile=0.5) -> torch.Tensor:
    """TSDiff's energy per batch item ``(B,)``, summed over the observed entries (module docstring).

    ``mse``: ``sum m (x0_hat - y_obs)^2``; ``quantile``: ``sum m max(q e, (q - 1) e)``, ``e = y_obs - x0_hat``.
    ``quantile`` is a level in (0, 1), or levels per item ``(B,)`` (or anything that broadcasts).
    """
    if kind == "mse":
        per_entry = (x0_hat - observed) ** 2
    elif kind == "quantile":
        q = expand(_check_quantile(quantile), x0_hat)
        e = observed - x0_hat
        per_entry = torch.maximum(q * e, (q - 1) * e)
    else:
        raise ValueError(f"unknown guidance kind {kind!r}; choose one of {KINDS}")
    return (mask * per_entry).flatten(1).sum(dim=1)


def observation_loss_grad(x0_hat: torch.Tensor, observed: torch.Tensor, mask: torch.Tensor, kind: str = "mse",
                          quantile=0.5) -> torch.Tensor:
    """``dL/dx0_hat`` of :func:`observation_loss`, in closed form.

    ``mse``: ``2 m (x0_hat - y_obs)``. ``quantile``: ``m (1[x0_hat > y_obs] - q)`` = ``-m (q - 1[y_obs < x0_hat])``
    (the pinball subgradient; ``-q m`` where ``x0_hat == y_obs``): an estimate below the observation is
    pushed up with weight ``q``, one above it down with weight ``1 - q``.
    """
    if kind == "mse":
        return 2 * mask * (x0_hat - observed)
    if kind == "quantile":
        q = expand(_check_quantile(quantile), x0_hat)
        return mask * ((x0_hat > observed).to(x0_hat.dtype) - q)
    raise ValueError(f"unknown guidance kind {kind!r}; choose one of {KINDS}")


def guidance_coefficient(process: GaussianPath, timesteps, like: torch.Tensor) -> torch.Tensor:
    """``s_t^2 / a_t``: how far the x0 estimate moves per unit of ``scale * grad_{x_t} L`` (Tweedie)."""
    a, _, s = path_at(process, timesteps, like)
    return s * s / a


def sample_quantiles(num_samples: int, batch_size: int = 1) -> torch.Tensor:
    """TSDiff's levels for quantile guidance: sample ``k`` of every series gets ``q = (k + 1) / (N + 1)``.

    Returns ``(batch_size * num_samples,)`` laid out as ``x.repeat_interleave(num_samples, 0)``
    (series-major: the ``N`` samples of series 0 first).
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError("num_samples and batch_size must be >= 1")
    return (torch.arange(num_samples, dtype=torch.float64).repeat(batch_size) + 1) / (num_samples + 1)


class ObservationGuidance:
    """Denoiser wrapper: ``guided(x_t, t) -> x0_hat - scale (s_t^2 / a_t) grad_{x_t} L(x0_hat(x_t, t))``.

        guided = ObservationGuidance(denoise, process, observed, mask, scale=4.0, kind="quantile",
                                     quantile=sample_quantiles(100, B))
        x0, nfe = sample(guided, process, y, generator=g)       # any sampler, unchanged

    Args:
        denoise: ``denoise(x_t, t) -> x0_hat`` (observation and conditioning bound), differentiable in ``x_t``
            (it must not run under ``torch.no_grad`` itself).
        process: the :class:`~shared.protocol.GaussianPath` the denoiser was trained with.
        observed: ``y_obs``, broadcastable to the state; entries where ``mask == 0`` are ignored (NaN allowed).
        mask: 1 where observed, 0 elsewhere (soft weights in [0, 1] are accepted); default: all observed.
        scale: TSDiff's guidance scale, or a callable ``scale(t)`` of the batch's timesteps.
        kind: ``"mse"`` or ``"quantile"``.
        quantile: level(s) of the quantile form: a float or per-item levels (:func:`sample_quantiles`).
    """

    def __init__(self, denoise: Denoise, process: GaussianPath, observed: torch.Tensor,
                 mask: Optional[torch.Tensor] = None, scale: Scale = 1.0, kind: str = "mse", quantile=0.5):
        if not isinstance(process, GaussianPath):
            raise TypeError(f"observation guidance needs a Gaussian-path process, got {type(process).__name__}")
        if kind not in KINDS:
            raise ValueError(f"unknown guidance kind {kind!r}; choose one of {KINDS}")
        if kind == "quantile":
            _check_quantile(quantile)
        if not callable(scale) and not float(scale) >= 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        mask = torch.ones_like(observed) if mask is None else torch.as_tensor(mask).to(observed)
        if bool(((mask < 0) | (mask > 1)).any()):
            raise ValueError("mask entries must be in [0, 1]")
        observed = torch.where(mask > 0, observed, torch.zeros_like(observed))
        if not bool(torch.isfinite(observed).all()):
            raise ValueError("observed values must be finite where the mask is set")
        self.denoise, self.process = denoise, process
        self.observed, self.mask = observed, mask
        self.scale, self.kind, self.quantile = scale, kind, quantile
        self.evaluations = 0
        self.backward_passes = 0

    def scale_at(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """The scale at timesteps ``t``, broadcast against ``like``."""
        value = self.scale(t) if callable(self.scale) else self.scale
        if not torch.is_tensor(value):
            value = torch.as_tensor(value, dtype=torch.float64)   # a Python float keeps its precision
        return expand(value, like)

    def loss(self, x0_hat: torch.Tensor) -> torch.Tensor:
        """:func:`observation_loss` of an x0 estimate against this object's observations ``(B,)``."""
        return observation_loss(x0_hat, self.observed.to(x0_hat), self.mask.to(x0_hat), self.kind, self.quantile)

    def gradient(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x0_hat, grad_{x_t} L(x0_hat(x_t, t)))``: one forward and one backward of the denoiser."""
        with torch.enable_grad():
            x = x_t.detach().requires_grad_(True)
            x0_hat = self.denoise(x, t)
            if not x0_hat.requires_grad:
                raise RuntimeError("the denoiser's output carries no gradient w.r.t. x_t: observation guidance "
                                   "needs a differentiable denoiser (not run under torch.no_grad, not detached)")
            dl = observation_loss_grad(x0_hat.detach(), self.observed.to(x0_hat), self.mask.to(x0_hat),
                                       self.kind, self.quantile)
            (g,) = torch.autograd.grad(x0_hat, x, grad_outputs=dl, allow_unused=True)
        self.evaluations += 1
        self.backward_passes += 1
        return x0_hat.detach(), torch.zeros_like(x) if g is None else g

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not callable(self.scale) and float(self.scale) == 0:
            self.evaluations += 1
            return self.denoise(x_t, t).detach()
        x0_hat, g = self.gradient(x_t, t)
        step = self.scale_at(t, x0_hat) * guidance_coefficient(self.process, t, x0_hat)
        return x0_hat - step * g

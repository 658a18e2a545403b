"""Absorbing-state (masked) discrete diffusion, MDLM (Sahoo et al. 2024), behind the core contract.

The state is a tensor of integer tokens ``x`` (any shape, typically ``(B, L)``) over a vocabulary of
``V = vocab_size`` entries, one of which (``mask_index``) is the absorbing mask token ``m``.

Forward process, continuous time ``t in (0, 1]``, log-linear schedule (MDLM's ``loglinear`` noise:
total noise ``sigma(t) = -log(1 - (1 - eps) t)``)::

    alpha_t = 1 - (1 - eps) t                         probability that a token is still clean
    q(x_t | x0) = prod_l Cat(x_t^l; alpha_t onehot(x0^l) + (1 - alpha_t) onehot(m))

so every token is masked independently with probability ``(1 - eps) t``; masked tokens stay masked.

Reverse step from ``t`` to ``s < t`` (MDLM's ancestral / "DDPM" update, eq. 7 with SUBS)::

    a clean token is carried over unchanged                         (carry-over unmasking)
    a masked token is unmasked with probability (alpha_s - alpha_t) / (1 - alpha_t) = (t - s) / t,
        its value drawn from the x0 distribution x0_hat^l (mask entry excluded),
    and stays masked otherwise.

At ``s = 0`` the unmasking probability is 1: the last step fills every remaining mask (MDLM's
"noise removal" step, folded into the grid).

SUBS parametrisation (:meth:`MaskedDiffusion.network_output`): the backbone returns logits over
the ``V`` entries; the mask entry gets ``-inf`` (zero masking probability), a softmax gives the
x0 distribution, and at unmasked positions it is replaced by the one-hot of the carried token.

Loss: the continuous-time NELBO (MDLM eq. 10-11)::

    L = E_{t, x_t} [ w(t) sum_{l: x_t^l = m} -log <x0_hat^l(x_t, t), onehot(x0^l)> ],
    w(t) = -alpha'_t / (1 - alpha_t) = (1 - eps) / ((1 - eps) t) = 1 / t.

(MDLM's code writes the same weight as ``dsigma / expm1(sigma)`` with ``dsigma = (1 - eps) /
(1 - (1 - eps) t)`` and ``expm1(sigma) = (1 - eps) t / (1 - (1 - eps) t)``; the ratio is ``1/t``.)
``t`` is drawn in ``[t_min, 1)`` with MDLM's antithetic (stratified) sampling, so ``w <= 1/t_min``.

The x0 estimate of this process (what the denoiser returns, ``model_output`` of :meth:`step` and
``pred_original_sample``) is the **x0 distribution**: probabilities over the vocabulary, shape
``x.shape + (V,)``. For one-hot encoded data this is exactly the posterior mean
``E[onehot(x0) | x_t]``, i.e. the same Tweedie x0 estimate the Gaussian processes return; its
argmax would lose the distribution the reverse step draws from. :meth:`MaskedDiffusion.x0_tokens`
turns it into tokens (argmax, carried tokens kept) for readers that need a sequence, such as a
reward.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config

from .processes import ProcessScheduler
from .protocol import Denoise, uniform_tensor

__all__ = ["MaskedDiffusion"]


class MaskedDiffusion(ProcessScheduler):
    """MDLM's masked (absorbing-state) diffusion as a diffusers scheduler.

    Timesteps are continuous floats in ``(0, 1]``: ``set_timesteps(N)`` gives the ``N`` grid times
    ``linspace(1, 0, N + 1)[:-1]`` (MDLM's uniform grid), each step going to the next grid time and
    the last one to ``s = 0``. ``N`` steps cost ``N`` network evaluations.

    The observation ``y`` only gives the shape of the tokens (and, for a shallow start, the tokens
    to start from); conditioning information, if any, is bound into the denoiser. For an
    unconditional model pass as ``y`` a token tensor of the wanted shape, e.g. all masks
    (``torch.full((B, L), process.mask_index)``).

    Args:
        vocab_size: ``V``, the number of token values including the mask token.
        mask_index: the mask token's value (default ``vocab_size - 1``).
        eps: the schedule's floor: at ``t = 1`` a token is masked with probability ``1 - eps``.
        t_min: smallest training time (the loss weight ``1/t`` is at most ``1/t_min``).
        num_train_timesteps: default number of reverse steps ``N``.
        antithetic: MDLM's antithetic (stratified) sampling of the training times in a batch.
    """

    default_sampler = "posterior"

    @register_to_config
    def __init__(self, vocab_size: int = 32, mask_index: Optional[int] = None, eps: float = 1e-3,
                 t_min: float = 1e-3, num_train_timesteps: int = 128, antithetic: bool = True):
        if vocab_size < 2:
            raise ValueError("vocab_size must be >= 2 (at least one token and the mask)")
        self.mask_index = vocab_size - 1 if mask_index is None else int(mask_index)
        if not 0 <= self.mask_index < vocab_size:
            raise ValueError(f"mask_index must be in 0..{vocab_size - 1}, got {mask_index}")
        if not 0 <= eps < 1:
            raise ValueError("eps must be in [0, 1)")
        if not 0 < t_min < 1:
            raise ValueError("t_min must be in (0, 1)")
        if num_train_timesteps < 1:
            raise ValueError("num_train_timesteps must be >= 1")
        self.vocab_size = int(vocab_size)
        self.num_inference_steps: Optional[int] = None
        self.timesteps = self._grid(num_train_timesteps, 1.0)

    # ----------------------------------------------------------------- schedule
    @property
    def init_noise_sigma(self) -> float:
        """1.0: the prior (all masks) carries no Gaussian noise to scale, and a diffusers-style loop
        that multiplies its start by ``init_noise_sigma`` leaves the token tensor unchanged."""
        return 1.0

    def alpha(self, timesteps) -> torch.Tensor:
        """``alpha_t = 1 - (1 - eps) t``: the probability that a token is still clean at ``t``."""
        return 1.0 - self.mask_probability(timesteps)

    def mask_probability(self, timesteps) -> torch.Tensor:
        """``1 - alpha_t = (1 - eps) t``: the probability that a token is masked at ``t``."""
        return (1.0 - self.config.eps) * torch.as_tensor(timesteps, dtype=torch.float64).cpu()

    def loss_weight(self, timesteps) -> torch.Tensor:
        """NELBO weight ``-alpha'_t / (1 - alpha_t) = 1 / t`` of the masked cross-entropy."""
        return 1.0 / torch.as_tensor(timesteps, dtype=torch.float64).cpu()

    def unmask_probability(self, t, s) -> float:
        """``(alpha_s - alpha_t) / (1 - alpha_t) = (t - s) / t``: chance that a masked token is revealed
        between ``t`` and ``s < t`` (1 at ``s = 0``)."""
        t, s = float(t), float(s)
        return (t - s) / t

    def _grid(self, n: int, start: float, device=None) -> torch.Tensor:
        return torch.linspace(start, 0.0, n + 1, dtype=torch.float32)[:-1].to(device)

    def set_timesteps(self, num_inference_steps: Optional[int] = None, device=None, *,
                      start: Optional[float] = None) -> None:
        """``N`` descending grid times ``linspace(start, 0, N + 1)[:-1]`` (``start`` default 1): a
        shallow start begins at ``start`` from :meth:`prior_sample` ``(timestep=start)``."""
        n = self.config.num_train_timesteps if num_inference_steps is None else int(num_inference_steps)
        top = 1.0 if start is None else float(start)
        if n < 1:
            raise ValueError(f"steps must be >= 1, got {n}")
        if not 0.0 < top <= 1.0:
            raise ValueError(f"start must be in (0, 1], got {start}")
        self.num_inference_steps = n
        self.timesteps = self._grid(n, top, device)

    def next_time(self, timestep) -> float:
        """The grid time after ``timestep`` in the current schedule; 0 after the last one."""
        ts = self.timesteps.detach().cpu().double()
        index = int(torch.argmin((ts - float(timestep)).abs()))
        return float(ts[index + 1]) if index + 1 < len(ts) else 0.0

    # ----------------------------------------------------------------- forward process
    def _per_item(self, timesteps, like: torch.Tensor) -> torch.Tensor:
        """Timesteps as float32 broadcasting against the token tensor ``like``."""
        t = torch.as_tensor(timesteps, dtype=torch.float32).to(like.device)
        return t.reshape(t.shape + (1,) * (like.ndim - t.ndim)) if t.ndim else t

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps, *,
                  y: torch.Tensor) -> torch.Tensor:
        """A draw from ``q(x_t | x0)``: token ``l`` becomes the mask where ``noise^l < (1 - eps) t``.

        ``noise`` holds ``U[0, 1)`` numbers of the tokens' shape (it decides which tokens are
        masked, so the result is deterministic given it); ``timesteps`` is a scalar or one per
        item. ``y`` is unused.
        """
        move = (1.0 - self.config.eps) * self._per_item(timesteps, original_samples)
        masked = noise.to(original_samples.device).float() < move
        return torch.where(masked, torch.full_like(original_samples, self.mask_index), original_samples)

    def prior_sample(self, y: torch.Tensor, generator=None, *, timestep: Optional[float] = None) -> torch.Tensor:
        """All masks, of ``y``'s shape (``y``: tokens of the wanted shape, e.g. all masks).

        With ``timestep`` (a shallow start, as SDEdit): ``y``'s tokens masked with the marginal
        probability ``(1 - eps) t``.
        """
        if timestep is None:
            return torch.full(y.shape, self.mask_index, dtype=torch.long, device=y.device)
        tokens = y.long()
        return self.add_noise(tokens, uniform_tensor(y.shape, generator, y.device), timestep, y=y)

    # ----------------------------------------------------------------- parametrisation
    def network_input(self, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """The tokens themselves (the backbone embeds them)."""
        return sample

    def network_output(self, out: torch.Tensor, sample: torch.Tensor, y: torch.Tensor, timesteps) -> torch.Tensor:
        """SUBS: logits ``out`` (``sample.shape + (V,)``) to the x0 distribution.

        The mask entry's logit is ``-inf``, a softmax normalises, and unmasked positions become the
        one-hot of their carried token. Returns probabilities in ``out``'s dtype.
        """
        never_mask = F.one_hot(torch.tensor(self.mask_index, device=out.device), out.shape[-1]).bool()
        probs = torch.softmax(out.float().masked_fill(never_mask, float("-inf")), dim=-1)
        carried = (sample != self.mask_index).unsqueeze(-1)
        probs = torch.where(carried, F.one_hot(sample.long(), out.shape[-1]).to(probs.dtype), probs)
        return probs.to(out.dtype)

    def model_time(self, timesteps) -> torch.Tensor:
        """Continuous ``t`` scaled to the 0..1000 range of the diffusers time embedding (as the OU SDE)."""
        return torch.as_tensor(timesteps).float() * 1000.0

    def x0_tokens(self, model_output: torch.Tensor, sample: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Tokens of an x0 estimate: the argmax of the x0 distribution (the mask entry excluded), with
        the clean tokens of ``sample`` carried over when it is given (SUBS outputs carry them already).
        This is the one-step x0 estimate that reward steering (SVDD) scores."""
        probs = model_output.float().clone()
        probs[..., self.mask_index] = -1.0
        tokens = probs.argmax(dim=-1)
        if sample is not None:
            tokens = torch.where(sample != self.mask_index, sample.long(), tokens)
        return tokens

    # ----------------------------------------------------------------- reverse process
    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor, *, y: torch.Tensor,
             generator=None, return_dict: bool = True):
        """One reverse step from ``sample = x_t`` to the next grid time ``s`` given the x0
        distribution ``model_output`` (``sample.shape + (V,)``).

        Each masked token is unmasked with probability ``(t - s) / t`` and then takes a value drawn
        from its row of ``model_output`` (mask entry excluded); clean tokens are never changed and
        never re-masked. At the last grid time (``s = 0``) every remaining mask is filled.
        ``pred_original_sample`` is ``model_output``; ``prev_sample_mean`` is ``prev_sample``
        (no separate noise-free part).
        """
        s = self.next_time(timestep)
        p = self.unmask_probability(timestep, s)
        device = sample.device
        masked = sample == self.mask_index
        reveal = masked & (uniform_tensor(sample.shape, generator, device) < p)
        probs = model_output.float()
        probs = probs.masked_fill(F.one_hot(torch.tensor(self.mask_index, device=probs.device),
                                            probs.shape[-1]).bool(), 0.0).clamp_min(0.0)
        # categorical draw by the exponential race: argmax_v p_v / E_v with E_v ~ Exp(1)
        race = -torch.log(uniform_tensor(probs.shape, generator, device).clamp_min(1e-30))
        values = (probs / race).argmax(dim=-1).to(sample.dtype)
        prev = torch.where(reveal, values, sample)
        return self._output(prev, model_output, None, return_dict)

    # ----------------------------------------------------------------- training
    def sample_training_timesteps(self, batch_size: int, device=None, generator=None) -> torch.Tensor:
        """``t = t_min + (1 - t_min) u`` with ``u ~ U[0, 1)``, antithetic as MDLM:
        ``u_i = (u_i / B + i / B) mod 1`` (one draw per stratum of the batch)."""
        u = uniform_tensor((batch_size,), generator, "cpu")
        if self.config.antithetic:
            u = (u / batch_size + torch.arange(batch_size) / batch_size) % 1.0
        return (self.config.t_min + (1.0 - self.config.t_min) * u).to(device)

    def training_loss(self, denoise: Denoise, x0: torch.Tensor, y: torch.Tensor, generator=None) -> torch.Tensor:
        """MDLM's continuous-time NELBO per token::

            mean_{items, l} [ (1/t) 1[x_t^l = m] (-log x0_hat^l[x0^l]) ]

        ``x0`` are clean tokens (no masks); ``denoise(x_t, t)`` returns the x0 distribution
        (``x0.shape + (V,)``, SUBS). The mean runs over every position, as MDLM's per-token NLL.
        """
        t = self.sample_training_timesteps(x0.shape[0], device=x0.device, generator=generator)
        x_t = self.add_noise(x0, uniform_tensor(x0.shape, generator, x0.device), t, y=y)
        probs = denoise(x_t, t)
        p_true = probs.float().gather(-1, x0.long().unsqueeze(-1)).squeeze(-1)
        nll = -torch.log(p_true.clamp_min(torch.finfo(torch.float32).tiny))
        weight = self._per_item(1.0 / t, x0)
        return torch.mean(weight * nll * (x_t == self.mask_index))

"""Reward steering without gradients: SVDD (soft value-based decoding) and its best-of-N baseline.

SVDD (Li et al. 2024, "Derivative-free guidance in continuous and discrete diffusion models with
soft value-based decoding") samples from the reward-tilted distribution ``p(x0) exp(r(x0) / alpha)``
one reverse step at a time::

    for each step t -> s of the grid:
        draw M candidates x_s^(1..M) ~ p(x_s | x_t)          (M independent draws of process.step)
        v^(m) = r(x0_hat(x_s^(m), s))                      (the soft value, approximated by the reward
                                                            of the candidate's one-step x0 estimate)
        keep x_s = x_s^(k), k ~ softmax(v / alpha)         (alpha -> 0 or alpha == 0: argmax)

*Which x0 estimate is scored*: the denoiser evaluated on the candidate at the next grid time ``s``
(as SVDD's own code, which calls the network on each candidate at ``sigma_s``, takes the argmax and
keeps the candidate's unmasked tokens). At the last step the candidates are the final samples
themselves (``prev_sample_mean``, what the sampler returns) and are scored directly, with no
network evaluation: the value at time 0 is the reward (SVDD's ``v_0 = r``). The chosen candidate's
x0 estimate is exactly the denoiser call the next step needs (same state, same time), so it is
reused rather than recomputed.

The reward reads x0 in the *sample's format* (what the sampler returns): a tensor for continuous
processes, tokens for the masked process. ``decode`` maps the denoiser's x0 estimate to that format
(identity by default; ``process.x0_tokens`` for :class:`shared.masked_diffusion.MaskedDiffusion`,
whose x0 estimate is a distribution over the vocabulary).

The loop is :func:`shared.samplers.sample_posterior` itself, driven through a wrapper around the
process whose ``step`` does the selection: SVDD is not a copy of a sampler. It needs a stochastic,
stateless ``step`` (ResShift's posterior, the OU predictor, the masked process); with a
deterministic solver all candidates coincide and SVDD is plain sampling.

Costs are counted per batch item: ``N`` steps with ``M`` candidates make ``M N`` reward calls and
``1 + M (N - 1)`` network evaluations (one at the start, ``M`` per candidate set except the last).
Best-of-N with ``n = M N`` spends the same reward calls. A smaller budget can be spent on ``G < N``
*guided steps* (``guided_steps``, evenly spaced over the grid, the last always among them; the
others draw a single candidate and call no reward): ``M G`` reward calls and ``N + (M - 1) G'``
evaluations, ``G'`` the guided steps before the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .protocol import Denoise, Process, ProcessStepOutput, uniform_tensor
from .samplers import Callback, Progress, batch_timestep, sample, sample_posterior

__all__ = ["GuidanceCounts", "Reward", "sample_value_guided", "best_of_n", "select"]

#: ``reward(x0) -> (B,)``: a score per item of a batch of x0 estimates (in the sample's format).
Reward = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class GuidanceCounts:
    """What a guided sampler spent, per batch item.

    Attributes:
        network_evaluations: denoiser evaluations per item (a call on a batch of B counts once).
        reward_calls: x0 estimates scored by the reward per item (a call on a batch of B counts once).
    """

    network_evaluations: int = 0
    reward_calls: int = 0


def select(values: torch.Tensor, alpha: float, generator=None) -> torch.Tensor:
    """Index per row of ``values`` (``(B, M)``) drawn with probability ``softmax(values / alpha)``;
    ``alpha == 0`` is the argmax. NaN and infinite values count as the worst score."""
    v = torch.nan_to_num(values.double(), nan=-1e300, neginf=-1e300, posinf=1e300)
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return v.argmax(dim=1)
    probs = torch.softmax((v - v.max(dim=1, keepdim=True).values) / alpha, dim=1)
    u = uniform_tensor((v.shape[0], 1), generator, v.device).double()
    return (probs.cumsum(dim=1) < u).sum(dim=1).clamp(max=v.shape[1] - 1)


def _pick(stack: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``stack[index[b], b]`` for every item ``b`` of a ``(M, B, ...)`` stack."""
    return stack[index.to(stack.device), torch.arange(stack.shape[1], device=stack.device)]


class _ValueGuided:
    """A process whose ``step`` is SVDD's selection among ``M`` candidates of the wrapped process's
    step; everything else is the wrapped process. Used only inside :func:`sample_value_guided`."""

    def __init__(self, process: Process, denoise: Denoise, reward: Reward, candidates: int, alpha: float,
                 decode: Callable[[torch.Tensor], torch.Tensor], counts: GuidanceCounts,
                 guided_steps: Optional[int] = None):
        self.process, self.denoise, self.reward = process, denoise, reward
        self.candidates, self.alpha, self.decode, self.counts = candidates, alpha, decode, counts
        self.guided_steps = guided_steps
        self.cached: Optional[tuple[torch.Tensor, float, torch.Tensor]] = None   # (state, time, x0_hat)

    def __getattr__(self, name):
        return getattr(self.process, name)

    def evaluate(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser, reusing the chosen candidate's x0 estimate when asked for it again."""
        if self.cached is not None and x is self.cached[0] and float(t.reshape(-1)[0]) == self.cached[1]:
            return self.cached[2]
        self.counts.network_evaluations += 1
        return self.denoise(x, t)

    def score(self, x0: torch.Tensor) -> torch.Tensor:
        self.counts.reward_calls += 1
        values = torch.as_tensor(self.reward(x0)).reshape(-1)
        if values.shape[0] != x0.shape[0]:
            raise ValueError(f"the reward must return one value per item ({x0.shape[0]}), got {tuple(values.shape)}")
        return values

    def guided(self, index: int, steps: int) -> bool:
        """Whether step ``index`` of ``steps`` draws candidates: all of them, or ``guided_steps`` evenly
        spaced ones ending at the last."""
        if self.guided_steps is None or self.guided_steps >= steps:
            return True
        return index in {round(i) for i in torch.linspace(steps - 1, 0, self.guided_steps).tolist()}

    def step(self, model_output, timestep, sample, *, y, generator=None, return_dict: bool = True):
        times = self.process.timesteps
        index = int(torch.argmin((times.detach().cpu().double() - float(timestep)).abs()))
        last = index + 1 >= len(times)
        if not self.guided(index, len(times)):
            self.cached = None
            return self.process.step(model_output, timestep, sample, y=y, generator=generator,
                                     return_dict=return_dict)
        prevs, means, estimates, values = [], [], [], []
        for _ in range(self.candidates):
            out = self.process.step(model_output, timestep, sample, y=y, generator=generator)
            prevs.append(out.prev_sample)
            means.append(out.prev_sample_mean)
            if last:
                values.append(self.score(out.prev_sample_mean))
            else:
                x0_hat = self.evaluate(out.prev_sample, batch_timestep(times[index + 1], y))
                estimates.append(x0_hat)
                decoded = self.decode(x0_hat)
                if decoded.shape != out.prev_sample.shape:
                    raise ValueError(
                        f"the x0 estimate decodes to shape {tuple(decoded.shape)}, not the sample's "
                        f"{tuple(out.prev_sample.shape)}: pass decode= (e.g. process.x0_tokens for a masked process)")
                values.append(self.score(decoded))
        chosen = select(torch.stack(values, dim=1), self.alpha, generator)
        prev, mean = _pick(torch.stack(prevs), chosen), _pick(torch.stack(means), chosen)
        self.cached = None if last else (prev, float(times[index + 1]), _pick(torch.stack(estimates), chosen))
        out = ProcessStepOutput(prev_sample=prev, pred_original_sample=model_output, prev_sample_mean=mean)
        return out if return_dict else (prev, model_output, mean)


def sample_value_guided(denoise: Denoise, process: Process, y: torch.Tensor, reward: Reward, *,
                        candidates: int = 8, alpha: float = 0.0, num_inference_steps: Optional[int] = None,
                        generator=None, decode: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                        guided_steps: Optional[int] = None, start=None, x_start: Optional[torch.Tensor] = None, callback: Optional[Callback] = None,
                        progress: Optional[Progress] = None) -> tuple[torch.Tensor, GuidanceCounts]:
    """SVDD: reward-steered ancestral sampling (module docstring).

    Args:
        denoise: ``denoise(x_t, t) -> x0_hat`` with the observation and conditioning bound (it is
            called on batches of ``y``'s size only).
        process: any process with a stochastic, stateless ``step``.
        y: the observation (for the masked process: tokens of the wanted shape).
        reward: ``reward(x0) -> (B,)`` on x0 in the sample's format; higher is better.
        candidates: ``M``, candidates drawn per step.
        alpha: temperature of the selection ``softmax(v / alpha)``; 0 takes the argmax.
        decode: maps the denoiser's x0 estimate to the sample's format before the reward reads it
            (default identity; ``process.x0_tokens`` for the masked process).
        guided_steps: ``G``, draw candidates at ``G`` evenly spaced steps only (default: every step).
        num_inference_steps, generator, start, x_start, callback, progress: as every sampler's
            (:mod:`shared.samplers`); the callback sees the evaluations of the sampled path only,
            not those that score candidates.

    Returns:
        ``(samples, counts)``: the samples as :func:`shared.samplers.sample_posterior` returns them and
        the per-item :class:`GuidanceCounts` (``M N`` reward calls, ``1 + M (N - 1)`` evaluations; with
        ``guided_steps=G``: ``M G`` and ``N + (M - 1) G'``).
    """
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    if guided_steps is not None and guided_steps < 1:
        raise ValueError(f"guided_steps must be >= 1, got {guided_steps}")
    counts = GuidanceCounts()
    guided = _ValueGuided(process, denoise, reward, int(candidates), float(alpha),
                          decode or (lambda x0_hat: x0_hat), counts, guided_steps)
    out, _ = sample_posterior(guided.evaluate, guided, y, num_inference_steps=num_inference_steps,
                              generator=generator, start=start, x_start=x_start, callback=callback,
                              progress=progress)
    return out, counts


@torch.no_grad()
def best_of_n(denoise: Denoise, process: Process, y: torch.Tensor, reward: Reward, n: int, *,
              generator=None, **sampler_kwargs) -> tuple[torch.Tensor, GuidanceCounts]:
    """Best-of-N: ``n`` independent samples per item (the process's default sampler,
    :func:`shared.samplers.sample`, with ``sampler_kwargs``), keep the one with the highest reward.

    The reward reads the samples themselves (``n`` reward calls per item); NaN scores lose.
    Returns ``(best, counts)`` with ``n`` times the sampler's evaluations.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    counts = GuidanceCounts()
    best, best_value = None, None
    for _ in range(int(n)):
        x, nfe = sample(denoise, process, y, generator=generator, **sampler_kwargs)
        counts.network_evaluations += nfe
        counts.reward_calls += 1
        value = torch.nan_to_num(torch.as_tensor(reward(x)).reshape(-1).double().to(x.device), nan=-torch.inf)
        if best is None:
            best, best_value = x.clone(), value
            continue
        better = value > best_value
        best = torch.where(better.reshape(better.shape + (1,) * (x.ndim - 1)), x, best)
        best_value = torch.where(better, value, best_value)
    return best, counts

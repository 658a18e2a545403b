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
Best-of-N with ``n = M N`` spends the same reward calls. A smaller budget is spent on ``G < N``
*decisions* (``guided_steps``, evenly spaced from the first step): each candidate is then a
*rollout* of about ``N / G`` steps, run to the next decision and scored there, so the candidates of a
masked process differ by about ``L / G`` revealed tokens rather than by the under-one token of a single
fine step. The cost is ``M G`` reward calls and still ``1 + M (N - 1)`` evaluations; ``G = 1`` is
best-of-``M`` (``M`` independent paths, the best final sample kept), ``G = N`` the step-wise SVDD above.
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
    """A process whose ``step`` is SVDD's selection among ``M`` candidate rollouts of the wrapped
    process's step; everything else is the wrapped process. Used only inside :func:`sample_value_guided`.

    At a decision step ``i`` every candidate is rolled out with the wrapped ``step`` (and the denoiser)
    up to the next decision step ``j``; the kept rollout's steps ``i + 1 .. j - 1`` are then replayed to
    the outer sampler loop, with their x0 estimates served from a cache (no second evaluation)."""

    def __init__(self, process: Process, denoise: Denoise, reward: Reward, candidates: int, alpha: float,
                 decode: Callable[[torch.Tensor], torch.Tensor], counts: GuidanceCounts,
                 guided_steps: Optional[int] = None):
        self.process, self.denoise, self.reward = process, denoise, reward
        self.candidates, self.alpha, self.decode, self.counts = candidates, alpha, decode, counts
        self.guided_steps = guided_steps
        self.cached: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}   # time -> (state, x0_hat)
        self.replay: dict[int, ProcessStepOutput] = {}                      # step index -> kept output

    def __getattr__(self, name):
        return getattr(self.process, name)

    def evaluate(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser, reusing the kept rollout's x0 estimates when asked for them again."""
        hit = self.cached.pop(float(t.reshape(-1)[0]), None)
        if hit is not None and x is hit[0]:
            return hit[1]
        self.counts.network_evaluations += 1
        return self.denoise(x, t)

    def score(self, x0: torch.Tensor) -> torch.Tensor:
        self.counts.reward_calls += 1
        values = torch.as_tensor(self.reward(x0)).reshape(-1)
        if values.shape[0] != x0.shape[0]:
            raise ValueError(f"the reward must return one value per item ({x0.shape[0]}), got {tuple(values.shape)}")
        return values

    def decisions(self, steps: int) -> list[int]:
        """The steps that draw candidates: every step, or ``guided_steps`` evenly spaced ones from the first
        (``G`` decisions split the ``N`` steps into ``G`` rollouts of about ``N / G`` steps)."""
        g = steps if self.guided_steps is None else min(self.guided_steps, steps)
        return sorted({(k * steps) // g for k in range(g)})

    def step(self, model_output, timestep, sample, *, y, generator=None, return_dict: bool = True):
        times = self.process.timesteps
        index = int(torch.argmin((times.detach().cpu().double() - float(timestep)).abs()))
        out = self.replay.pop(index, None)
        if out is None:
            out = self.decide(index, model_output, sample, y, generator)
        return out if return_dict else (out.prev_sample, out.pred_original_sample, out.prev_sample_mean)

    def rollout(self, start: int, end: int, x0_hat, x, y, generator) -> tuple[list, torch.Tensor, Optional[torch.Tensor]]:
        """One candidate: the wrapped steps ``start .. end - 1`` and its value at ``end``.

        Returns ``(outputs, value, x0_end)``: every step's output (with the x0 estimate it used as
        ``pred_original_sample``), the reward of the x0 estimate at ``end`` (of the final sample when
        ``end`` is the last), and that estimate (None at the last)."""
        times, outputs = self.process.timesteps, []
        for k in range(start, end):
            if k > start:
                self.counts.network_evaluations += 1
                x0_hat = self.denoise(x, batch_timestep(times[k], y))
            out = self.process.step(x0_hat, times[k], x, y=y, generator=generator)
            outputs.append(ProcessStepOutput(prev_sample=out.prev_sample, pred_original_sample=x0_hat,
                                             prev_sample_mean=out.prev_sample_mean))
            x = out.prev_sample
        if end >= len(times):
            return outputs, self.score(outputs[-1].prev_sample_mean), None
        self.counts.network_evaluations += 1
        x0_end = self.denoise(x, batch_timestep(times[end], y))
        decoded = self.decode(x0_end)
        if decoded.shape != x.shape:
            raise ValueError(
                f"the x0 estimate decodes to shape {tuple(decoded.shape)}, not the sample's "
                f"{tuple(x.shape)}: pass decode= (e.g. process.x0_tokens for a masked process)")
        return outputs, self.score(decoded), x0_end

    def decide(self, index: int, model_output, sample, y, generator) -> ProcessStepOutput:
        """Draw ``M`` rollouts from decision step ``index`` to the next, keep one by ``softmax(v / alpha)``;
        queue its later steps for replay and cache its x0 estimates."""
        times = self.process.timesteps
        end = next((d for d in self.decisions(len(times)) if d > index), len(times))
        rollouts = [self.rollout(index, end, model_output, sample, y, generator) for _ in range(self.candidates)]
        chosen = select(torch.stack([value for _, value, _ in rollouts], dim=1), self.alpha, generator)
        kept = [ProcessStepOutput(*(_pick(torch.stack([getattr(r[0][k], f) for r in rollouts]), chosen)
                                    for f in ("prev_sample", "pred_original_sample", "prev_sample_mean")))
                for k in range(end - index)]
        self.replay = {index + k: out for k, out in enumerate(kept) if k > 0}
        self.cached = {float(times[index + k]): (kept[k - 1].prev_sample, kept[k].pred_original_sample)
                       for k in range(1, end - index)}
        if end < len(times):
            self.cached[float(times[end])] = (kept[-1].prev_sample,
                                              _pick(torch.stack([r[2] for r in rollouts]), chosen))
        return kept[0]


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
        guided_steps: ``G``, draw candidate rollouts at ``G`` evenly spaced decision steps, each run to
            the next decision (default: every step decides).
        num_inference_steps, generator, start, x_start, callback, progress: as every sampler's
            (:mod:`shared.samplers`); the callback sees the evaluations of the sampled path only,
            not those that score candidates.

    Returns:
        ``(samples, counts)``: the samples as :func:`shared.samplers.sample_posterior` returns them and
        the per-item :class:`GuidanceCounts` (``M G`` reward calls, ``G = N`` by default, and
        ``1 + M (N - 1)`` evaluations).
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

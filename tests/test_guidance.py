"""Reward steering (SVDD) and best-of-N: selection rule, exact cost accounting, and steering of a
discrete (masked) and a continuous (ResShift) process with analytic denoisers."""

from __future__ import annotations

import pytest
import torch

from shared.guidance import GuidanceCounts, best_of_n, sample_value_guided, select
from shared.masked_diffusion import MaskedDiffusion
from shared.processes import ResShiftScheduler
from shared.samplers import sample

V = 6


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class Counted:
    """Wraps a callable and counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


def masked_setup(batch: int = 4, length: int = 12):
    p = MaskedDiffusion(vocab_size=V)
    y = torch.full((batch, length), p.mask_index)
    uniform = lambda x, t: p.network_output(torch.zeros(*x.shape, V), x, y, t)  # noqa: E731
    ones = lambda tokens: (tokens == 1).float().sum(-1)  # noqa: E731  (reward: number of token 1)
    return p, y, uniform, ones


def test_select_alpha_zero_and_small_is_the_argmax():
    v = torch.randn(50, 7, generator=gen())
    assert torch.equal(select(v, 0.0), v.argmax(1))
    assert torch.equal(select(v, 1e-8, gen(1)), v.argmax(1))
    v[3] = float("nan")                             # NaN loses; a row of NaN still picks something
    assert 0 <= int(select(v, 0.0)[3]) < 7
    with pytest.raises(ValueError):
        select(v, -1.0)


def test_select_samples_the_softmax():
    v = torch.tensor([[0.0, 1.0, 2.0]]).expand(20_000, 3)
    picks = select(v, 1.0, gen(2))
    freq = torch.bincount(picks, minlength=3).float() / len(picks)
    torch.testing.assert_close(freq, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), atol=0.015, rtol=0)


@pytest.mark.parametrize("alpha", [0.0, 1e-6])
def test_svdd_keeps_the_argmax_candidate(alpha):
    """Every step keeps the best-scored candidate: the x0 estimate of the state the sampler moves to is
    scored as the maximum of that step's candidates, and the output is the best final candidate."""
    p, y, uniform, ones = masked_setup()
    scores = []

    def reward(tokens):
        scores.append(ones(tokens))
        return scores[-1]

    states = []
    out, counts = sample_value_guided(uniform, p, y, reward, candidates=5, alpha=alpha, num_inference_steps=6,
                                      generator=gen(), decode=p.x0_tokens,
                                      callback=lambda step: states.append(step.sample))
    per_step = torch.stack(scores).reshape(6, 5, -1)              # (steps, candidates, batch)
    best = per_step.max(dim=1).values
    for i in range(5):   # the state seen at step i + 1 is the candidate kept at step i
        kept = ones(p.x0_tokens(uniform(states[i + 1], None), states[i + 1]))
        torch.testing.assert_close(kept, best[i])
    torch.testing.assert_close(ones(out), best[-1])
    assert torch.all(out != p.mask_index)


def test_svdd_counts_are_exact():
    p, y, uniform, ones = masked_setup()
    denoise, reward = Counted(uniform), Counted(ones)
    steps, m = 7, 3
    _, counts = sample_value_guided(denoise, p, y, reward, candidates=m, num_inference_steps=steps,
                                    generator=gen(), decode=p.x0_tokens)
    assert counts == GuidanceCounts(network_evaluations=1 + m * (steps - 1), reward_calls=m * steps)
    assert denoise.calls == counts.network_evaluations and reward.calls == counts.reward_calls


@pytest.mark.parametrize("guided", [1, 3, 7])
def test_svdd_guided_steps_spend_the_stated_budget(guided):
    """``G`` decisions cost ``M G`` reward calls and, with rollouts to the next decision, ``1 + M (N - 1)``
    evaluations whatever ``G``; the outer loop's evaluations on the kept rollout come from the cache."""
    p, y, uniform, ones = masked_setup()
    denoise, reward = Counted(uniform), Counted(ones)
    steps, m = 7, 3
    out, counts = sample_value_guided(denoise, p, y, reward, candidates=m, num_inference_steps=steps,
                                      generator=gen(), decode=p.x0_tokens, guided_steps=guided)
    assert counts == GuidanceCounts(network_evaluations=1 + m * (steps - 1), reward_calls=m * guided)
    assert denoise.calls == counts.network_evaluations and reward.calls == counts.reward_calls
    assert torch.all(out != p.mask_index)
    with pytest.raises(ValueError, match="guided_steps"):
        sample_value_guided(uniform, p, y, ones, guided_steps=0, decode=p.x0_tokens)


def test_svdd_with_one_decision_is_best_of_n():
    """``G = 1``: ``M`` rollouts from the prior to the end, the best kept: best-of-``M`` draw for draw."""
    p, y, uniform, ones = masked_setup(batch=8, length=10)
    svdd, _ = sample_value_guided(uniform, p, y, ones, candidates=5, num_inference_steps=6, generator=gen(3),
                                  decode=p.x0_tokens, guided_steps=1)
    best, _ = best_of_n(uniform, p, y, ones, 5, num_inference_steps=6, generator=gen(3))
    assert torch.equal(svdd, best)


def test_svdd_rollouts_replay_the_kept_path():
    """With ``G < N`` the sampler's own states are the kept rollout's: every state the callback sees
    between decisions is a continuation of the previous one (revealed tokens never change)."""
    p, y, uniform, ones = masked_setup(batch=6, length=12)
    states = []
    out, _ = sample_value_guided(uniform, p, y, ones, candidates=4, num_inference_steps=8, generator=gen(4),
                                 decode=p.x0_tokens, guided_steps=2, callback=lambda step: states.append(step.sample))
    assert len(states) == 8
    for before, after in zip(states + [out], states[1:] + [out]):
        revealed = before != p.mask_index
        assert torch.equal(after[revealed], before[revealed])


def test_svdd_is_reproducible_and_steers_the_masked_process():
    p, y, uniform, ones = masked_setup(batch=16, length=16)
    unguided, _ = sample(uniform, p, y, num_inference_steps=8, generator=gen(1))
    a, _ = sample_value_guided(uniform, p, y, ones, candidates=4, alpha=0.1, num_inference_steps=8,
                               generator=gen(1), decode=p.x0_tokens)
    b, _ = sample_value_guided(uniform, p, y, ones, candidates=4, alpha=0.1, num_inference_steps=8,
                               generator=gen(1), decode=p.x0_tokens)
    assert torch.equal(a, b)
    assert ones(a).mean() > ones(unguided).mean() + 2   # 16/5 = 3.2 expected unguided; about twice that steered


def test_svdd_asks_for_decode_when_the_estimate_is_not_a_sample():
    p, y, uniform, ones = masked_setup()
    with pytest.raises(ValueError, match="decode"):
        sample_value_guided(uniform, p, y, ones, candidates=2, num_inference_steps=3, generator=gen())


def gaussian_setup(batch: int = 64):
    """ResShift on x0 ~ N(0, tau^2 I) with the exact (Gaussian-conditioning) denoiser and y = 0."""
    p = ResShiftScheduler(num_train_timesteps=8, kappa=1.0)
    tau = 1.0
    y = torch.zeros(batch, 1, 4, 4)

    def exact(x, t):   # x_t = (1 - eta) x0 + eta y + kappa sqrt(eta) eps
        eta = p.eta(t).float().view(-1, 1, 1, 1)
        a = 1 - eta
        return a * tau**2 / (a**2 * tau**2 + p.config.kappa**2 * eta) * (x - eta * y)

    reward = lambda x0: x0.mean(dim=(1, 2, 3))  # noqa: E731
    return p, y, exact, reward


def test_svdd_steers_a_continuous_process():
    p, y, exact, reward = gaussian_setup()
    unguided, _ = sample(exact, p, y, generator=gen(3))
    steered, counts = sample_value_guided(exact, p, y, reward, candidates=4, alpha=0.0, generator=gen(3))
    assert counts == GuidanceCounts(network_evaluations=1 + 4 * 7, reward_calls=4 * 8)
    assert steered.shape == y.shape and torch.isfinite(steered).all()
    assert reward(steered).mean() > reward(unguided).mean() + 0.3   # gap ~0.4; the mean of 64 has std ~0.03


def test_best_of_n_uses_n_reward_calls_and_keeps_the_best():
    p, y, exact, reward = gaussian_setup(batch=8)
    counted = Counted(reward)
    best, counts = best_of_n(exact, p, y, counted, 5, generator=gen(4))
    assert counted.calls == 5 and counts == GuidanceCounts(network_evaluations=5 * 8, reward_calls=5)
    g = gen(4)   # the same draws, one after the other
    runs = torch.stack([sample(exact, p, y, generator=g)[0] for _ in range(5)])
    scores = torch.stack([reward(r) for r in runs])
    torch.testing.assert_close(reward(best), scores.max(0).values)
    torch.testing.assert_close(best, runs[scores.argmax(0), torch.arange(8)])


def test_best_of_n_on_tokens():
    p, y, uniform, ones = masked_setup(batch=16)
    best, counts = best_of_n(uniform, p, y, ones, 4, num_inference_steps=5, generator=gen(5))
    assert counts == GuidanceCounts(network_evaluations=4 * 5, reward_calls=4)
    assert best.dtype == torch.long and torch.all(best != p.mask_index)

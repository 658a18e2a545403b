"""Masked (absorbing-state) discrete diffusion, MDLM: closed forms of the schedule, the SUBS
parametrisation, the reverse step and the NELBO, and sampling through the generic sampler."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from shared.checkpoints import PROCESSES
from shared.masked_diffusion import MaskedDiffusion
from shared.samplers import sample, sample_posterior

V = 6   # five tokens and the mask (index 5)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tokens(shape, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, V - 1, shape, generator=gen(seed))


def random_probs(shape, seed: int = 0) -> torch.Tensor:
    """A random x0 distribution over the vocabulary with no mass on the mask."""
    logits = torch.randn(*shape, V, generator=gen(seed))
    logits[..., V - 1] = -torch.inf
    return logits.softmax(-1)


def test_registered_and_defaults():
    p = MaskedDiffusion(vocab_size=V)
    assert PROCESSES["MaskedDiffusion"] is MaskedDiffusion
    assert p.mask_index == V - 1 and MaskedDiffusion(vocab_size=V, mask_index=0).mask_index == 0
    with pytest.raises(ValueError):
        MaskedDiffusion(vocab_size=V, mask_index=V)


def test_schedule_closed_forms():
    p = MaskedDiffusion(vocab_size=V, eps=1e-3)
    t = torch.tensor([0.01, 0.25, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(p.mask_probability(t), (1 - 1e-3) * t)
    torch.testing.assert_close(p.alpha(t), 1 - (1 - 1e-3) * t)
    # NELBO weight -alpha'_t / (1 - alpha_t), alpha' by a central difference, is 1/t
    h = 1e-6
    slope = (p.alpha(t + h) - p.alpha(t - h)) / (2 * h)
    torch.testing.assert_close(-slope / (1 - p.alpha(t)), 1 / t)
    torch.testing.assert_close(p.loss_weight(t), 1 / t)
    # MDLM writes it as dsigma / expm1(sigma) with sigma = -log(1 - (1 - eps) t)
    sigma = -torch.log1p(-(1 - 1e-3) * t)
    dsigma = (1 - 1e-3) / (1 - (1 - 1e-3) * t)
    torch.testing.assert_close(dsigma / torch.expm1(sigma), 1 / t)
    assert p.unmask_probability(0.5, 0.25) == pytest.approx(0.5)
    assert p.unmask_probability(0.3, 0.0) == 1.0


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9, 1.0])
def test_mask_probability_per_t_is_empirical(t):
    p = MaskedDiffusion(vocab_size=V)
    x0 = tokens((4, 25_000))
    noise = torch.rand(x0.shape, generator=gen(1))
    x_t = p.add_noise(x0, noise, t, y=x0)
    masked = x_t == p.mask_index
    q = (1 - p.config.eps) * t
    assert abs(masked.float().mean().item() - q) < 4 * math.sqrt(q * (1 - q) / x0.numel()) + 1e-9
    assert torch.equal(x_t[~masked], x0[~masked])   # unmasked tokens are the clean ones


def test_add_noise_deterministic_given_noise_and_per_item():
    p = MaskedDiffusion(vocab_size=V)
    x0 = tokens((3, 40))
    noise = torch.rand(x0.shape, generator=gen(2))
    assert torch.equal(p.add_noise(x0, noise, 0.6, y=x0), p.add_noise(x0, noise.clone(), 0.6, y=x0))
    t = torch.tensor([0.2, 0.6, 1.0])
    both = p.add_noise(x0, noise, t, y=x0)
    for i in range(3):
        assert torch.equal(both[i], p.add_noise(x0[i:i + 1], noise[i:i + 1], t[i], y=x0)[0])


def test_prior_is_all_masked_with_the_shape_of_y():
    p = MaskedDiffusion(vocab_size=V)
    y = torch.full((3, 17), p.mask_index)
    prior = p.prior_sample(y, generator=gen())
    assert prior.shape == y.shape and prior.dtype == torch.long
    assert torch.all(prior == p.mask_index)
    # a shallow start masks y's tokens with the marginal probability
    y = tokens((4, 10_000))
    shallow = p.prior_sample(y, generator=gen(), timestep=0.3)
    assert abs((shallow == p.mask_index).float().mean().item() - 0.3 * (1 - p.config.eps)) < 0.01
    assert torch.equal(shallow[shallow != p.mask_index], y[shallow != p.mask_index])


def test_grid_descends_in_the_unit_interval():
    p = MaskedDiffusion(vocab_size=V)
    p.set_timesteps(4)
    torch.testing.assert_close(p.timesteps, torch.tensor([1.0, 0.75, 0.5, 0.25]))
    assert [p.next_time(t) for t in p.timesteps] == [0.75, 0.5, 0.25, 0.0]
    p.set_timesteps(2, start=0.5)
    torch.testing.assert_close(p.timesteps, torch.tensor([0.5, 0.25]))
    for bad in ({"num_inference_steps": 0}, {"start": 0.0}, {"start": 1.5}):
        with pytest.raises(ValueError):
            p.set_timesteps(**{"num_inference_steps": 3, **bad})


def test_subs_parametrisation():
    p = MaskedDiffusion(vocab_size=V)
    x = tokens((2, 12))
    x[:, ::2] = p.mask_index
    logits = torch.randn(2, 12, V, generator=gen(3), requires_grad=True)
    probs = p.network_output(logits, x, x, torch.full((2,), 0.5))
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 12))
    assert torch.all(probs[..., p.mask_index] == 0)   # the mask is never predicted
    carried = x != p.mask_index
    assert torch.equal(probs[carried], F.one_hot(x[carried], V).float())   # carry-over
    probs.sum().backward()   # differentiable (no in-place edit of the logits)
    assert torch.equal(p.x0_tokens(probs, x)[carried], x[carried])
    assert torch.all(p.x0_tokens(probs) != p.mask_index)


def test_step_never_remasks_or_changes_a_clean_token():
    p = MaskedDiffusion(vocab_size=V)
    p.set_timesteps(10)
    x0 = tokens((8, 64))
    x = p.add_noise(x0, torch.rand(x0.shape, generator=gen(4)), 0.7, y=x0)
    probs = random_probs((8, 64), seed=5)
    for i, t in enumerate(p.timesteps):
        out = p.step(probs, t, x, y=x0, generator=gen(10 + i))
        clean = x != p.mask_index
        assert torch.equal(out.prev_sample[clean], x[clean])     # carried over, never re-masked
        assert torch.equal(out.prev_sample_mean, out.prev_sample)
        assert out.pred_original_sample is probs                  # the x0 estimate, as given
        x = out.prev_sample
    assert torch.all(x != p.mask_index)                           # the last step fills every mask


def test_step_unmasks_with_the_closed_form_probability_from_the_x0_distribution():
    p = MaskedDiffusion(vocab_size=V)
    p.set_timesteps(4)   # 1, 0.75, 0.5, 0.25
    x = torch.full((50, 2000), p.mask_index)
    probs = torch.tensor([0.1, 0.2, 0.3, 0.0, 0.4, 0.0]).expand(50, 2000, V)
    out = p.step(probs, p.timesteps[1], x, y=x, generator=gen(6)).prev_sample   # t = 0.75 -> s = 0.5
    revealed = out != p.mask_index
    assert abs(revealed.float().mean().item() - (0.75 - 0.5) / 0.75) < 0.005
    freq = torch.bincount(out[revealed], minlength=V).float() / revealed.sum()
    torch.testing.assert_close(freq, probs[0, 0], atol=0.006, rtol=0)
    final = p.step(probs, p.timesteps[-1], x, y=x, generator=gen(7)).prev_sample   # s = 0
    assert torch.all(final != p.mask_index)


def test_training_loss_closed_forms():
    p = MaskedDiffusion(vocab_size=V)
    x0 = tokens((512, 64))
    perfect = lambda x, t: F.one_hot(x0, V).float()  # noqa: E731
    assert p.training_loss(perfect, x0, x0, generator=gen()).item() == 0.0
    # a uniform guess over the V - 1 tokens: E_t[(1/t) (1 - eps) t log(V - 1)] = (1 - eps) log(V - 1)
    # (the 1/t weight makes the estimate noisy: std about 0.02 at this size)
    uniform = lambda x, t: p.network_output(torch.zeros(*x.shape, V), x, x0, t)  # noqa: E731
    loss = p.training_loss(uniform, x0, x0, generator=gen(1))
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx((1 - p.config.eps) * math.log(V - 1), rel=0.05)
    # gradients reach a backbone through the SUBS output
    w = torch.zeros(V, V, requires_grad=True)
    learned = lambda x, t: p.network_output(w[x], x, x0, t)  # noqa: E731
    p.training_loss(learned, x0, x0, generator=gen(2)).backward()
    assert torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


def test_training_times_are_stratified_in_range():
    p = MaskedDiffusion(vocab_size=V, t_min=1e-3)
    t = p.sample_training_timesteps(8, generator=gen())
    assert torch.all((t >= 1e-3) & (t < 1))
    strata = ((t - 1e-3) / (1 - 1e-3) * 8).floor().long()
    assert sorted(strata.tolist()) == list(range(8))   # antithetic: one time per eighth


def test_sampling_through_the_generic_sampler_with_a_callback():
    p = MaskedDiffusion(vocab_size=V)
    y = torch.full((3, 20), p.mask_index)
    x0 = tokens((3, 20))
    exact = lambda x, t: F.one_hot(x0, V).float()  # noqa: E731
    out, nfe = sample(exact, p, y, num_inference_steps=7, generator=gen())
    assert nfe == 7 and torch.equal(out, x0)
    target = tokens((3, 20), seed=9)
    seen = []

    def hook(step):
        seen.append((step.index, float(step.timestep), int((step.sample == p.mask_index).sum())))
        return replace(step, x0_hat=F.one_hot(target, V).float())

    out, nfe = sample_posterior(exact, p, y, num_inference_steps=5, generator=gen(), callback=hook)
    assert torch.equal(out, target) and [s[0] for s in seen] == list(range(5))
    assert [s[1] for s in seen] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    masks = [s[2] for s in seen]
    assert masks[0] == y.numel() and all(a >= b for a, b in zip(masks, masks[1:]))


def test_sampling_is_reproducible_and_a_uniform_model_gives_uniform_tokens():
    p = MaskedDiffusion(vocab_size=V)
    y = torch.full((16, 64), p.mask_index)
    uniform = lambda x, t: p.network_output(torch.zeros(*x.shape, V), x, y, t)  # noqa: E731
    a, _ = sample(uniform, p, y, num_inference_steps=10, generator=gen(1))
    b, _ = sample(uniform, p, y, num_inference_steps=10, generator=gen(1))
    c, _ = sample(uniform, p, y, num_inference_steps=10, generator=gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    freq = torch.bincount(a.reshape(-1), minlength=V).float() / a.numel()
    torch.testing.assert_close(freq[:-1], torch.full((V - 1,), 1 / (V - 1)), atol=0.03, rtol=0)
    assert freq[-1] == 0

"""Observation self-guidance (TSDiff) against its closed form on a linear-Gaussian toy, on every registered
Gaussian-path process, and through a real network (:mod:`shared.self_guidance`).

Toy: ``x0 ~ N(MU, V0 I)``, the exact (Tweedie) denoiser of any path ``x_t = a x0 + b y + s eps``, and
observations ``y_obs = x0 + N(0, TAU2)`` on the masked entries. Then ``p_t(y_obs | x_t) = N(x0_hat, v_t + TAU2)``
(``v_t = Var(x0 | x_t)``), so MSE guidance with ``scale(t) = 1 / (2 (v_t + TAU2))`` is exact: the guided
estimate is ``E[x0 | x_t, y_obs]``, which is the Tweedie denoiser of the posterior prior
``N(mu_post, v_post)`` on the observed entries.
"""

from __future__ import annotations

import pytest
import torch

from shared.backbone1d import SeriesUNet
from shared.checkpoints import PROCESSES
from shared.denoiser import ConditionalDenoiser
from shared.processes import GaussianDiffusion
from shared.protocol import GaussianPath, grid_of, path_at
from shared.samplers import sample, sample_deterministic
from shared.self_guidance import (ObservationGuidance, guidance_coefficient, observation_loss,
                                  observation_loss_grad, sample_quantiles)

torch.set_num_threads(1)

MU, V0, TAU2 = 0.3, 1.5**2, 0.1**2
SHAPE = (4, 2, 16)
GAUSSIAN = sorted(name for name, cls in PROCESSES.items() if isinstance(cls(), GaussianPath))


def test_the_three_gaussian_paths_are_registered():
    assert {"ResShiftScheduler", "GaussianDiffusion", "OUVEScheduler"} <= set(GAUSSIAN)
    assert "DirectPrediction" not in GAUSSIAN


def tweedie(process, y, mu, v0):
    """Exact ``E[x0 | x_t]`` for ``x0 ~ N(mu, v0)`` (elementwise; ``mu``, ``v0`` floats or tensors)."""
    def denoise(x, t):
        a, b, s = path_at(process, t, x)
        k = a * v0 / (a * a * v0 + s * s)
        return mu + k * (x - b * y - a * mu)
    return denoise


def toy(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(SHAPE, generator=g, dtype=torch.float64)
    observed = 2.0 + 0.5 * torch.randn(SHAPE, generator=g, dtype=torch.float64)
    mask = (torch.rand(SHAPE, generator=g) < 0.5).double()
    return y, observed, mask


def posterior_prior(observed, mask):
    """``(mu, v)`` of ``x0 | y_obs``: the Gaussian update on observed entries, the prior elsewhere."""
    v_post = 1 / (1 / V0 + 1 / TAU2)
    mu_post = v_post * (MU / V0 + observed / TAU2)
    return torch.where(mask > 0, mu_post, torch.full_like(observed, MU)), torch.where(
        mask > 0, torch.full_like(observed, v_post), torch.full_like(observed, V0))


def exact_scale(process):
    """``scale(t) = 1 / (2 (v_t + TAU2))`` with ``v_t = V0 s^2 / (a^2 V0 + s^2)``."""
    def scale(t):
        a, _, s = (torch.as_tensor(c, dtype=torch.float64) for c in process.path_coefficients(t))
        v = V0 * s**2 / (a**2 * V0 + s**2)
        return 1 / (2 * (v + TAU2))
    return scale


def grid_times(process):
    ts = grid_of(process)
    return [ts[0], ts[len(ts) // 2], ts[-1]]


@pytest.mark.parametrize("name", GAUSSIAN)
def test_guided_estimate_is_the_exact_posterior_mean(name):
    process = PROCESSES[name]()
    y, observed, mask = toy()
    guided = ObservationGuidance(tweedie(process, y, MU, V0), process, observed, mask, scale=exact_scale(process))
    exact = tweedie(process, y, *posterior_prior(observed, mask))
    g = torch.Generator().manual_seed(1)
    for t in grid_times(process):
        tb = torch.as_tensor(t).expand(SHAPE[0])
        a, b, s = path_at(process, tb, y)
        x_t = a * (MU + V0**0.5 * torch.randn(SHAPE, generator=g, dtype=torch.float64)) + b * y \
            + s * torch.randn(SHAPE, generator=g, dtype=torch.float64)
        torch.testing.assert_close(guided(x_t, tb), exact(x_t, tb), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["mse", "quantile"])
@pytest.mark.parametrize("name", GAUSSIAN)
def test_constant_scale_matches_the_formula(name, kind):
    """``x0' = x0_hat - scale (s^2 / a) k dL/dx0_hat`` with ``k = dx0_hat/dx_t`` of the elementwise toy."""
    process = PROCESSES[name]()
    y, observed, mask = toy(2)
    q = sample_quantiles(2, 2)   # per-item levels 1/3, 2/3, 1/3, 2/3
    guided = ObservationGuidance(tweedie(process, y, MU, V0), process, observed, mask, scale=0.7, kind=kind,
                                 quantile=q)
    t = torch.as_tensor(grid_of(process)[0]).expand(SHAPE[0])
    x_t = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, _, s = path_at(process, t, x_t)
    k = a * V0 / (a * a * V0 + s * s)
    x0 = tweedie(process, y, MU, V0)(x_t, t)
    if kind == "mse":
        dl = 2 * mask * (x0 - observed)
    else:
        dl = mask * ((x0 > observed).double() - q[:, None, None])
    torch.testing.assert_close(guided(x_t, t), x0 - 0.7 * (s * s / a) * k * dl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(guidance_coefficient(process, t, x_t), s * s / a)


def test_quantile_gradient_on_a_hand_made_case():
    x0 = torch.tensor([[0.0, 2.0, -1.0, 5.0]], dtype=torch.float64)
    obs = torch.tensor([[1.0, 1.0, -1.5, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    # pinball d/dx0 = -(q - 1[y < x0]): below the observation -q, above it 1 - q, unobserved 0
    grad = observation_loss_grad(x0, obs, mask, "quantile", 0.9)
    torch.testing.assert_close(grad, torch.tensor([[-0.9, 0.1, 0.1, 0.0]], dtype=torch.float64))
    # e = y - x0 = (1, -1, 0.5, .): max(q e, (q - 1) e) = 0.9, 0.1, 0.05
    torch.testing.assert_close(observation_loss(x0, obs, mask, "quantile", 0.9),
                               torch.tensor([1.05], dtype=torch.float64))
    torch.testing.assert_close(observation_loss(x0, obs, mask, "mse"), torch.tensor([1.0 + 1.0 + 0.25],
                                                                                   dtype=torch.float64))
    # the closed forms are the autograd gradients of the losses (away from ties)
    for kind in ("mse", "quantile"):
        x = x0.clone().requires_grad_(True)
        (auto,) = torch.autograd.grad(observation_loss(x, obs, mask, kind, 0.9).sum(), x)
        torch.testing.assert_close(auto, observation_loss_grad(x0, obs, mask, kind, 0.9))
    # q = 0.5 is half the absolute error: the median's subgradient
    torch.testing.assert_close(observation_loss_grad(x0, obs, mask, "quantile", 0.5),
                               torch.tensor([[-0.5, 0.5, 0.5, 0.0]], dtype=torch.float64))


def test_sample_quantiles_layout():
    q = sample_quantiles(3, 2)
    torch.testing.assert_close(q, torch.tensor([0.25, 0.5, 0.75, 0.25, 0.5, 0.75], dtype=torch.float64))


def run(denoise, process, y, deterministic, seed=7):
    with torch.no_grad():
        if deterministic:
            return sample_deterministic(denoise, process, y, generator=torch.Generator().manual_seed(seed))[0]
        return sample(denoise, process, y, generator=torch.Generator().manual_seed(seed))[0]


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("name", GAUSSIAN)
def test_guided_sampling_is_posterior_sampling(name, deterministic):
    """With the exact scale the guided sampler is the sampler of the posterior prior (same noise, same
    result); it moves the observed entries toward ``y_obs`` and leaves unobserved ones exactly as unguided."""
    process = PROCESSES[name]()
    y, observed, mask = toy(4)
    plain = tweedie(process, y, MU, V0)
    guided = ObservationGuidance(plain, process, observed, mask, scale=exact_scale(process))
    x_guided = run(guided, process, y, deterministic)
    x_exact = run(tweedie(process, y, *posterior_prior(observed, mask)), process, y, deterministic)
    x_plain = run(plain, process, y, deterministic)
    torch.testing.assert_close(x_guided, x_exact, rtol=1e-6, atol=1e-6)
    obs = mask > 0
    err_guided = (x_guided - observed)[obs].abs().mean()
    err_plain = (x_plain - observed)[obs].abs().mean()
    assert err_guided < 0.5 * err_plain, (float(err_guided), float(err_plain))
    assert torch.equal(x_guided[~obs], x_plain[~obs])
    assert guided.evaluations == guided.backward_passes > 0


@pytest.mark.parametrize("name", GAUSSIAN)
def test_scale_zero_and_empty_mask_leave_sampling_unchanged(name):
    process = PROCESSES[name]()
    y, observed, mask = toy(5)
    plain = tweedie(process, y, MU, V0)
    reference = run(plain, process, y, False)
    off = ObservationGuidance(plain, process, observed, mask, scale=0.0)
    assert torch.equal(run(off, process, y, False), reference)
    assert off.backward_passes == 0 and off.evaluations > 0
    nothing = ObservationGuidance(plain, process, observed, torch.zeros_like(mask), scale=3.0, kind="quantile")
    assert torch.equal(run(nothing, process, y, False), reference)   # backward taken, gradient exactly 0
    assert nothing.backward_passes > 0


def small_network(seed: int = 0):
    torch.manual_seed(seed)
    net = SeriesUNet(in_channels=1, out_channels=1, width=16, layers=3, norm_num_groups=4)
    return ConditionalDenoiser(net, GaussianDiffusion(num_train_timesteps=100, solver="ddim"), skip=0.0).eval()


def test_guidance_through_a_network_is_one_vjp():
    den = small_network()
    B, L = 3, 23
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(B, 1, L)
    observed = torch.randn(B, 1, L, generator=g)
    mask = torch.zeros(B, 1, L)
    mask[..., :15] = 1
    observed[mask == 0] = float("nan")   # unobserved may be missing
    x_t = torch.randn(B, 1, L, generator=g)
    t = torch.full((B,), 40, dtype=torch.long)
    denoise = lambda x, tt: den(x, tt, y)  # noqa: E731
    for kind in ("mse", "quantile"):
        guided = ObservationGuidance(denoise, den.process, observed, mask, scale=2.5, kind=kind, quantile=0.8)
        x = x_t.clone().requires_grad_(True)
        x0 = denoise(x, t)
        (grad,) = torch.autograd.grad(guided.loss(x0).sum(), x)
        a, _, s = path_at(den.process, t, x_t)
        expected = x0.detach() - 2.5 * (s * s / a) * grad
        with torch.no_grad():   # as inside every sampler
            out = guided(x_t, t)
        assert not out.requires_grad
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        assert (guided.evaluations, guided.backward_passes) == (1, 1)
    assert all(p.grad is None for p in den.parameters())   # only d/dx_t was taken
    guided = ObservationGuidance(denoise, den.process, observed, mask, scale=1.0)
    x0, nfe = sample_deterministic(guided, den.process, y, num_inference_steps=5,
                                   generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(x0).all() and nfe == 5 == guided.evaluations


def test_errors():
    den = small_network()
    y = torch.zeros(2, 1, 8)
    obs, mask = torch.zeros(2, 1, 8), torch.ones(2, 1, 8)
    for process in (PROCESSES["DirectPrediction"](),):
        with pytest.raises(TypeError, match="Gaussian-path"):
            ObservationGuidance(lambda x, t: x, process, obs, mask)
    with pytest.raises(ValueError, match="kind"):
        ObservationGuidance(lambda x, t: x, den.process, obs, mask, kind="l1")
    with pytest.raises(ValueError, match="quantile"):
        ObservationGuidance(lambda x, t: x, den.process, obs, mask, kind="quantile", quantile=1.0)
    with pytest.raises(ValueError, match="scale"):
        ObservationGuidance(lambda x, t: x, den.process, obs, mask, scale=-1.0)
    bad = obs.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        ObservationGuidance(lambda x, t: x, den.process, bad, mask)
    frozen = torch.no_grad()(lambda x, t: den(x, t, y))
    with pytest.raises(RuntimeError, match="no gradient"):
        ObservationGuidance(frozen, den.process, obs, mask)(torch.randn(2, 1, 8), torch.full((2,), 5))

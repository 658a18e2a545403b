"""ResShift process: schedule, posterior, forward chain, samplers (closed forms)."""

import math

import numpy as np
import pytest
import torch

from shared.processes import ResShiftScheduler, resshift_sqrt_etas
from shared.samplers import sample_deterministic, sample_posterior


def test_schedule_t4_matches_design_values():
    s = ResShiftScheduler(num_train_timesteps=4, kappa=2.0, min_noise_level=0.2, power=0.3)
    np.testing.assert_allclose(s.sqrt_etas.numpy(), [0.1, 0.5201, 0.7614, 0.99], atol=1e-4)


def test_schedule_t15_endpoints_and_monotone():
    sq = resshift_sqrt_etas(15, min_noise_level=0.04, kappa=2.0, etas_end=0.99, power=0.3)
    assert sq[0] == pytest.approx(0.02)  # min(0.04 / 2, 0.04)
    assert sq[-1] == pytest.approx(0.99)
    assert np.all(np.diff(sq) > 0)
    # closed form of the middle value: sqrt(eta_1) * b0 ** (((t-1)/(T-1))**p * (T-1))
    b0 = math.exp(math.log(0.99 / 0.02) / 14)
    assert sq[7] == pytest.approx(0.02 * b0 ** ((7 / 14) ** 0.3 * 14))


def test_add_noise_is_the_marginal():
    s = ResShiftScheduler()
    x0, y, eps = torch.randn(3, 2, 4, 4).unbind(0)
    t = torch.tensor([2, 0])
    out = s.add_noise(x0, eps, t, y=y)
    eta = s.etas[t].float().view(2, 1, 1)
    torch.testing.assert_close(out, x0 + eta * (y - x0) + 2.0 * eta.sqrt() * eps)


def test_posterior_matches_gaussian_conditioning():
    """Posterior from precision-weighted conditioning of the forward chain, computed independently."""
    s = ResShiftScheduler()
    k = s.config.kappa
    x0, y, xt = torch.randn(3, 5)
    for t, prev in [(3, 2), (2, 1), (1, 0), (3, 0)]:
        eta_t, eta_s = float(s.etas[t]), float(s.etas[prev])
        # prior x_s ~ N(x0 + eta_s (y - x0), k^2 eta_s); x_t | x_s ~ N(x_s + (eta_t-eta_s)(y-x0), k^2 (eta_t-eta_s))
        prec = 1 / (k**2 * eta_s) + 1 / (k**2 * (eta_t - eta_s))
        mean = ((x0 + eta_s * (y - x0)) / (k**2 * eta_s)
                + (xt - (eta_t - eta_s) * (y - x0)) / (k**2 * (eta_t - eta_s))) / prec
        m, v = s.posterior_mean_variance(x0, xt, t, prev)
        torch.testing.assert_close(m, mean, rtol=1e-5, atol=1e-5)
        assert v == pytest.approx(1 / prec)
        # and the formula stated in the docs
        alpha = eta_t - eta_s
        torch.testing.assert_close(m, (eta_s / eta_t) * xt + (alpha / eta_t) * x0, rtol=1e-5, atol=1e-6)
        assert v == pytest.approx(k**2 * eta_s / eta_t * alpha)


def test_chained_forward_transitions_match_add_noise_statistics():
    s = ResShiftScheduler()
    k = s.config.kappa
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0, y = torch.full((n,), 0.3), torch.full((n,), -0.7)
    x = x0 + k * float(s.sqrt_etas[0]) * torch.randn(n, generator=g) + float(s.etas[0]) * (y - x0)
    for t in range(1, 4):
        alpha = float(s.etas[t] - s.etas[t - 1])
        x = x + alpha * (y - x0) + k * math.sqrt(alpha) * torch.randn(n, generator=g)
        direct = s.add_noise(x0, torch.randn(n, generator=g), torch.full((n,), t), y=y)
        assert x.mean().item() == pytest.approx(direct.mean().item(), abs=0.01)
        assert x.std().item() == pytest.approx(direct.std().item(), rel=0.01)
        assert x.std().item() == pytest.approx(k * float(s.sqrt_etas[t]), rel=0.01)


def test_prior_and_input_scaling():
    s = ResShiftScheduler()
    y = torch.zeros(100_000)
    x = s.prior_sample(y, generator=torch.Generator().manual_seed(1))
    assert x.std().item() == pytest.approx(2.0 * 0.99, rel=0.01)
    scaled = s.scale_model_input(torch.ones(2), torch.tensor([0, 3]))
    expected = [1 / math.sqrt(4 * 0.01 + 1), 1 / math.sqrt(4 * 0.99**2 + 1)]
    np.testing.assert_allclose(scaled.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("steps", [1, 2, 4])
def test_sampler_returns_x0_when_network_is_exact(deterministic, steps):
    s = ResShiftScheduler()
    x0, y = torch.randn(2, 1, 3, 8, 8).unbind(0)
    sampler = sample_deterministic if deterministic else sample_posterior
    out, nfe = sampler(lambda x, t: x0, s, y, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))
    assert nfe == steps
    torch.testing.assert_close(out, x0)


def test_deterministic_step_keeps_the_marginal_form():
    """With an exact x0, a SinSR step maps x0 + eta_t e0 + k sqrt(eta_t) z to the same form at t-1."""
    s = ResShiftScheduler()
    s.set_timesteps(4)
    x0, y, z = torch.randn(3, 16)
    xt = s.add_noise(x0, z, torch.tensor(3), y=y)
    prev = s.step(x0, 3, xt, y=y, deterministic=True).prev_sample
    torch.testing.assert_close(prev, s.add_noise(x0, z, torch.tensor(2), y=y), rtol=1e-5, atol=1e-5)


def test_same_seed_same_output_and_different_seed_differs():
    s = ResShiftScheduler()
    y = torch.randn(1, 3, 8, 8)
    denoise = lambda x, t: 0.5 * x  # noqa: E731
    a, _ = sample_posterior(denoise, s, y, generator=torch.Generator().manual_seed(3))
    b, _ = sample_posterior(denoise, s, y, generator=torch.Generator().manual_seed(3))
    c, _ = sample_posterior(denoise, s, y, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_set_timesteps_respacing_and_errors():
    s = ResShiftScheduler()
    s.set_timesteps(2)
    assert s.timesteps.tolist() == [3, 0]
    s.set_timesteps(4)
    assert s.timesteps.tolist() == [3, 2, 1, 0]
    s.set_timesteps(1)
    assert s.timesteps.tolist() == [3]
    with pytest.raises(ValueError, match="1..4"):
        s.set_timesteps(5)
    with pytest.raises(ValueError):
        s.set_timesteps(0)
    s.set_timesteps(2, start=2)      # a shallow start
    assert s.timesteps.tolist() == [2, 0]
    with pytest.raises(ValueError, match="1..3"):
        s.set_timesteps(4, start=2)


def test_config_round_trip(tmp_path):
    s = ResShiftScheduler(num_train_timesteps=15, kappa=2.0, min_noise_level=0.04)
    s.save_config(tmp_path)
    r = ResShiftScheduler.from_config(ResShiftScheduler.load_config(tmp_path))
    torch.testing.assert_close(r.etas, s.etas)


@pytest.mark.parametrize("solver", ["ddim", "dpmsolver++"])
def test_gaussian_baseline_process_and_solvers(solver):
    from shared.processes import GaussianDiffusion

    p = GaussianDiffusion(solver=solver)
    x0, y, eps = torch.randn(3, 2, 3, 4, 4).unbind(0)
    t = torch.tensor([0, 999])
    abar = p.ddpm.alphas_cumprod[t].view(2, 1, 1, 1)
    torch.testing.assert_close(p.add_noise(x0, eps, t, y=y), abar.sqrt() * x0 + (1 - abar).sqrt() * eps)
    a, b, s = p.path_coefficients(t)
    torch.testing.assert_close(a.float().view(2, 1, 1, 1), abar.sqrt())
    assert float(b.abs().max()) == 0.0
    # the backbone's eps becomes Tweedie's x0 estimate
    torch.testing.assert_close(p.network_output(eps, p.add_noise(x0, eps, t, y=y), y, t), x0, atol=1e-3, rtol=0)
    # an exact x0-denoiser is recovered by the diffusers solver (deterministic, zero-noise path)
    x0 = torch.rand(1, 3, 8, 8) * 1.6 - 0.8
    out, nfe = sample_posterior(lambda x, tt: x0, p, x0, num_inference_steps=10,
                                generator=torch.Generator().manual_seed(0))
    assert nfe == 10
    torch.testing.assert_close(out, x0, atol=2e-3, rtol=0)
    out, nfe = sample_deterministic(lambda x, tt: x0, p, x0, num_inference_steps=10)
    torch.testing.assert_close(out, x0)


@pytest.mark.parametrize("solver", ["ddim", "dpmsolver++"])
def test_gaussian_clip_sample_range_clips_x0_before_each_step(solver):
    from shared.processes import GaussianDiffusion

    def first_step(x0_hat, **config):
        p = GaussianDiffusion(solver=solver, **config)
        p.set_timesteps(10)
        return p.step(x0_hat, p.timesteps[0], x_t, y=x0_hat).prev_sample

    x_t = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    wild = torch.rand(1, 2, 8, 8) * 1.6 - 0.8
    wild[..., :4, :] *= 40                                            # an estimate far outside [-1, 1]
    clipped = first_step(wild, clip_sample_range=1.0)
    torch.testing.assert_close(clipped, first_step(wild.clamp(-1, 1)))
    assert not torch.allclose(clipped, first_step(wild))
    assert GaussianDiffusion(clip_sample_range=1.0).config.clip_sample_range == 1.0    # saved with the config
    with pytest.raises(ValueError, match="clip_sample_range"):
        GaussianDiffusion(clip_sample_range=0.0)


def test_gaussian_v_prediction_closed_forms():
    from shared.processes import GaussianDiffusion

    p = GaussianDiffusion(prediction_type="v_prediction")
    x0, y, eps = torch.randn(3, 2, 3, 4, 4, generator=torch.Generator().manual_seed(2)).unbind(0)
    t = torch.tensor([0, 999])
    abar = p.ddpm.alphas_cumprod[t].view(2, 1, 1, 1)
    a, s = abar.sqrt(), (1 - abar).sqrt()
    x_t = p.add_noise(x0, eps, t, y=y)
    v = a * eps - s * x0                                              # Salimans & Ho's velocity
    # the backbone's v becomes x0 = a x_t - s v, exactly even at t = T (no 1/a amplification)
    torch.testing.assert_close(p.network_output(v, x_t, y, t), x0, atol=1e-5, rtol=0)
    # the loss is |v_hat - v|^2: zero for the exact x0, |dx0|^2 / s^2 for an error dx0
    g = torch.Generator().manual_seed(3)
    assert float(p.training_loss(lambda x, tt: x0, x0, y, generator=g)) < 1e-10
    err = p.training_loss(lambda x, tt: x0 + 0.01, x0, y, generator=torch.Generator().manual_seed(3))
    tt = torch.randint(0, 1000, (2,), generator=torch.Generator().manual_seed(3))
    expected = torch.mean(0.01 ** 2 / (1 - p.ddpm.alphas_cumprod[tt]).view(2, 1, 1, 1).expand_as(x0))
    torch.testing.assert_close(err, expected.float(), rtol=1e-4, atol=0)
    assert GaussianDiffusion.from_config(p.config).config.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="prediction_type"):
        GaussianDiffusion(prediction_type="sample")

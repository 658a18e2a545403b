"""OU mean-reverting SDE (SGMSE+ OUVE), its samplers, and consistency models on residual paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared.consistency import (boundary_coefficients, consistency_function, consistency_grid,
                                distillation_loss, noise_level, sample_consistency)
from shared.processes import DirectPrediction, ResShiftScheduler
from shared.samplers import (residual_path_step, sample_deterministic, sample_predictor_corrector,
                             sample_probability_flow)
from shared.sde import OUVEScheduler


def integrated_variance(process: OUVEScheduler, t: float, n: int = 20000) -> float:
    """Variance at ``t`` from the SDE coefficients: ``v(t) = int_0^t e^{-2 theta (t-u)} g(u)^2 du``
    (the solution of ``dv/dt = -2 theta v + g^2``, v(0) = 0), trapezoid rule."""
    u = np.linspace(0.0, t, n + 1)
    g2 = process.diffusion(torch.from_numpy(u)).numpy() ** 2
    return float(np.trapezoid(np.exp(-2 * process.config.theta * (t - u)) * g2, u))


def integrated_mean(process: OUVEScheduler, x0: float, y: float, t: float, n: int = 20000) -> float:
    """Euler integration of the drift ``dm/dt = theta (y - m)``, m(0) = x0."""
    m, dt = x0, t / n
    for _ in range(n):
        m += process.config.theta * (y - m) * dt
    return m


@pytest.mark.parametrize("t", [0.03, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("scale", [1.0, 1 / math.sqrt(2)])
def test_ouve_variance_matches_integrated_sde(t, scale):
    p = OUVEScheduler(component_scale=scale)
    assert float(p.marginal_std(t)) ** 2 == pytest.approx(integrated_variance(p, t), rel=1e-4)


def test_ouve_mean_matches_integrated_drift():
    p = OUVEScheduler()
    for t in (0.1, 0.5, 1.0):
        a = float(p.mean_coefficient(t))
        assert a * 2.0 + (1 - a) * (-1.0) == pytest.approx(integrated_mean(p, 2.0, -1.0, t), abs=1e-3)


def test_ouve_reference_values():
    p = OUVEScheduler()
    assert float(p.sigma(1.0)) == pytest.approx(0.389, abs=5e-4)   # DESIGN.md
    assert float(p.sigma(0.0)) == 0.0
    s = p.sigma(torch.linspace(0, 1, 50))
    assert torch.all(s[1:] > s[:-1])


def test_ouve_add_noise_statistics():
    p = OUVEScheduler(component_scale=1 / math.sqrt(2))
    g = torch.Generator().manual_seed(0)
    x0, y = torch.full((200000,), 0.5), torch.full((200000,), -0.3)
    t = torch.full((200000,), 0.6)
    x = p.add_noise(x0, torch.randn(200000, generator=g), t, y=y)
    a = math.exp(-1.5 * 0.6)
    assert float(x.mean()) == pytest.approx(a * 0.5 - (1 - a) * 0.3, abs=3e-3)
    assert float(x.std()) == pytest.approx(float(p.sigma(0.6)) / math.sqrt(2), rel=1e-2)


def test_ouve_conversions_round_trip():
    p = OUVEScheduler()
    g = torch.Generator().manual_seed(1)
    x0, y, z = (torch.randn(2, 3, 4, generator=g) for _ in range(3))
    t = 0.4
    x_t = p.add_noise(x0, z, torch.tensor(t), y=y)
    assert torch.allclose(p.network_output(z, x_t, y, t), x0, atol=1e-5)   # eps backbone -> Tweedie x0
    assert torch.allclose(p.score(x0, x_t, y, t), -z / p.marginal_std(t).float(), atol=1e-4)
    a, b, s = p.path_coefficients(t)
    assert float(a + b) == pytest.approx(1.0) and float(s) == pytest.approx(float(p.marginal_std(t)))


def test_residual_preconditioning():
    """EDM coefficients on the residual: F = 0 gives x0_hat = y at high noise and x_tilde at low noise;
    an exact x0 gives zero loss; the weighted loss equals DSM up to the 1/s_d^2 term."""
    p = OUVEScheduler(parametrization="residual", sigma_data=0.05, component_scale=0.7071)
    g = torch.Generator().manual_seed(3)
    x0, y, z = (0.1 * torch.randn(4, 2, 8, 8, generator=g) for _ in range(3))
    hi, lo = torch.ones(4), torch.full((4,), 0.03)
    x_hi = p.add_noise(x0, torch.randn(4, 2, 8, 8, generator=g), hi, y=y)
    out_hi = p.network_output(torch.zeros_like(x0), x_hi, y, hi)
    assert float((out_hi - y).abs().max()) < 0.01 * float((x_hi - y).abs().max())
    x_lo = p.add_noise(x0, z, lo, y=y)
    a = float(p.mean_coefficient(0.03))
    c_skip = 0.05**2 / ((float(p.marginal_std(0.03)) / a) ** 2 + 0.05**2)
    expected = y + c_skip * (x_lo - y) / a
    assert torch.allclose(p.network_output(torch.zeros_like(x0), x_lo, y, lo), expected, atol=1e-6)
    assert float(p.training_loss(lambda x_t, t: x0, x0, y)) == 0.0


def test_ouve_training_loss_zero_for_exact_denoiser():
    p = OUVEScheduler()
    g = torch.Generator().manual_seed(2)
    x0, y = torch.randn(4, 2, 8, 8, generator=g), torch.randn(4, 2, 8, 8, generator=g)
    assert float(p.training_loss(lambda x_t, t: x0, x0, y)) < 1e-8
    assert float(p.training_loss(lambda x_t, t: y, x0, y)) > 0.1


def test_ouve_config_round_trip(tmp_path):
    p = OUVEScheduler(theta=2.0, component_scale=0.5)
    p.save_config(tmp_path)
    q = OUVEScheduler.from_config(OUVEScheduler.load_config(tmp_path))
    assert q.config.theta == 2.0 and q.config.component_scale == 0.5


def test_pc_sampler_grid_and_evaluations():
    p = OUVEScheduler()
    y = torch.zeros(1, 2, 4, 4)
    _, nfe = sample_predictor_corrector(lambda x, t: torch.zeros_like(x), p, y, num_inference_steps=7)
    assert nfe == 14
    assert float(p.timesteps[0]) == 1.0 and float(p.timesteps[-1]) == pytest.approx(0.03)
    assert sum(p.step_size(i) for i in range(7)) == pytest.approx(1.0)


def test_pc_sampler_same_seed_same_output():
    p = OUVEScheduler()
    y = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    model = lambda x, t: 0.1 * (x - y)  # noqa: E731
    runs = [sample_predictor_corrector(model, p, y, num_inference_steps=5, generator=torch.Generator().manual_seed(s))[0]
            for s in (3, 3, 4)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


@pytest.mark.parametrize("sampler", ["deterministic", "rk45"])
def test_probability_flow_recovers_point_mass(sampler):
    """For a point mass at ``x0`` the exact denoiser returns ``x0`` everywhere."""
    p = OUVEScheduler(component_scale=1 / math.sqrt(2))
    g = torch.Generator().manual_seed(0)
    x0, y = torch.randn(1, 2, 4, 4, generator=g), torch.randn(1, 2, 4, 4, generator=g)
    x_start = p.prior_sample(y, generator=g)
    exact = lambda x, t: x0  # noqa: E731
    if sampler == "deterministic":  # exact steps, then the x0 estimate at t_eps: x0 itself
        out, nfe = sample_deterministic(exact, p, y, num_inference_steps=5, x_start=x_start)
        assert nfe == 5 and torch.allclose(out, x0, atol=1e-5)
        return
    out, nfe = sample_probability_flow(exact, p, y, x_start=x_start, final_denoise=False)
    # the exact ODE keeps the initial noise direction: x_{t_eps} = mean + s(t_eps) eps
    a1, b1, s1 = (float(v) for v in p.path_coefficients(1.0))
    a, b, s = (float(v) for v in p.path_coefficients(0.03))
    eps = (x_start - a1 * x0 - b1 * y) / s1
    assert torch.allclose(out, a * x0 + b * y + s * eps, atol=1e-3)
    assert nfe > 5


@pytest.mark.parametrize("parametrization", ["eps", "residual"])
def test_pc_sampler_recovers_point_mass(parametrization):
    p = OUVEScheduler(component_scale=1 / math.sqrt(2), parametrization=parametrization)
    g = torch.Generator().manual_seed(0)
    # speech-spectrogram scale: x0 ~ 0.07, y - x0 ~ 0.045 (5 dB), noise at t = 1 ~ 0.28
    x0 = 0.07 * torch.randn(1, 2, 16, 16, generator=g)
    y = x0 + 0.045 * torch.randn(1, 2, 16, 16, generator=g)
    out, _ = sample_predictor_corrector(lambda x, t: x0, p, y, num_inference_steps=30, generator=g)
    assert float((out - x0).pow(2).mean()) < 0.01 * float((y - x0).pow(2).mean())


def test_residual_path_step_is_sinsr_for_resshift():
    p = ResShiftScheduler()
    g = torch.Generator().manual_seed(0)
    x_t, x0_hat, y = (torch.randn(1, 3, 4, 4, generator=g) for _ in range(3))
    ours = residual_path_step(x0_hat, x_t, y, [float(v) for v in p.path_coefficients(3)],
                              [float(v) for v in p.path_coefficients(1)])
    p.set_timesteps(3)
    assert p.timesteps.tolist() == [3, 2, 0]
    p.timesteps = torch.tensor([3, 1, 0])
    sinsr = p.step(x0_hat, 3, x_t, y=y, deterministic=True).prev_sample
    assert torch.allclose(ours, sinsr, atol=1e-5)


def test_consistency_boundary_condition():
    c_skip, c_out = boundary_coefficients(torch.tensor([0.1, 0.5]), 0.1, 0.2)
    assert float(c_skip[0]) == 1.0 and float(c_out[0]) == 0.0
    assert float(c_skip[1]) == pytest.approx(0.04 / (0.16 + 0.04))
    for process in (OUVEScheduler(), ResShiftScheduler()):
        grid = consistency_grid(process, 10)
        x = torch.randn(2, 2, 4, 4)
        for level in ("effective", "marginal"):
            f = consistency_function(lambda x, t: torch.randn_like(x), process, 0.1, grid[0], level)
            assert torch.allclose(f(x, grid[0].expand(2)), x)


def test_consistency_noise_levels():
    """``effective`` is s_t / a_t of the residual path, ``marginal`` is s_t; at the top of the speech SDE the
    effective level leaves almost none of the prior sample in the one-step output, the marginal one 5 %."""
    p = OUVEScheduler(component_scale=0.7071)
    for t in (0.03, 0.5, 1.0):
        s = 0.7071 * float(p.sigma(t))
        assert float(noise_level(p, t, "marginal")) == pytest.approx(s, rel=1e-5)
        assert float(noise_level(p, t, "effective")) == pytest.approx(s / math.exp(-1.5 * t), rel=1e-5)
    grid = consistency_grid(p, 30)
    skip = {level: float(boundary_coefficients(noise_level(p, 1.0, level), float(noise_level(p, grid[0], level)),
                                               0.06)[0]) for level in ("effective", "marginal")}
    assert skip["effective"] < 0.003 and 0.04 < skip["marginal"] < 0.06
    r = ResShiftScheduler()   # eta_T = 0.99^2: a_T = 0.0199, q_T = kappa * 0.99 / a_T
    assert float(noise_level(r, len(r) - 1)) == pytest.approx(2 * 0.99 / (1 - 0.99**2), rel=1e-3)
    assert float(noise_level(r, -1)) == 0.0
    with pytest.raises(ValueError):
        noise_level(p, 1.0, "sigma")


def test_consistency_grids():
    assert consistency_grid(ResShiftScheduler()).tolist() == [-1, 0, 1, 2, 3]
    g = consistency_grid(OUVEScheduler(), 30)
    assert len(g) == 31 and float(g[0]) == pytest.approx(0.03) and float(g[-1]) == 1.0


@pytest.mark.parametrize("process", [OUVEScheduler(component_scale=0.7071), ResShiftScheduler()])
def test_distillation_loss_zero_for_exact_consistency_function(process):
    """With an exact teacher (point mass) the ideal consistency function returns x0 everywhere
    except at the boundary, where it is the identity; the loss then vanishes."""
    g = torch.Generator().manual_seed(0)
    x0, y = torch.randn(3, 2, 4, 4, generator=g), torch.randn(3, 2, 4, 4, generator=g)
    grid = consistency_grid(process, 8)

    def ideal(x, t):  # trajectory of a point mass: every point maps to its x0 (boundary: identity)
        at_min = (t == grid[0]).float().view(-1, 1, 1, 1)
        return at_min * x + (1 - at_min) * x0

    teacher_x0 = lambda x, t: x0  # noqa: E731
    # pairs never use t_n = t_min for the continuous grid except n = 0, where x_lo is x0-consistent
    continuous = torch.is_floating_point(process.timesteps)
    loss = distillation_loss(ideal, ideal, teacher_x0, process, x0, y, grid[1:] if continuous else grid)
    assert float(loss) < 1e-10


def test_multistep_consistency_sampling_counts_and_seed():
    p = OUVEScheduler()
    y = torch.randn(1, 2, 4, 4)
    f = lambda x, t: 0.5 * x  # noqa: E731
    for steps in (1, 2, 4):
        out, nfe = sample_consistency(f, p, y, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))
        again, _ = sample_consistency(f, p, y, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))
        assert nfe == steps and torch.equal(out, again)
    with pytest.raises(ValueError):
        sample_consistency(f, p, y, num_inference_steps=0)


def test_sampler_times_are_evenly_spaced_grid_points_from_the_top():
    from shared.consistency import sampler_times
    grid = torch.linspace(0.0, 1.0, 31)
    assert torch.equal(sampler_times(grid, 1), grid[[30]])
    assert torch.equal(sampler_times(grid, 2), grid[[30, 15]])
    assert torch.equal(sampler_times(grid, 4), grid[[30, 22, 15, 8]])     # 22.5 and 7.5 round to even
    assert torch.equal(sampler_times(grid, 30), grid.flip(0)[:-1])
    assert torch.equal(sampler_times(grid, 2, stop=15), grid[[30, 22]])
    assert torch.equal(sampler_times(grid, 4, stop=15), grid[[30, 26, 22, 19]])
    assert torch.equal(sampler_times(grid, 15, stop=15), grid[torch.arange(30, 15, -1)])
    with pytest.raises(ValueError, match="1..30"):
        sampler_times(grid, 31)
    with pytest.raises(ValueError, match="1..15"):
        sampler_times(grid, 16, stop=15)
    with pytest.raises(ValueError, match="stop"):
        sampler_times(grid, 1, stop=30)


def test_direct_prediction_magnitude_loss_closed_form():
    """``magnitude_weight`` a: ``(1 - a) |f - x0|^2 + a (|f| - |x0|)^2`` on (re, im) channel pairs; a phase
    rotation of the target costs nothing in the magnitude term."""
    from shared.complex import complex_to_channels, pair_magnitude

    z0 = torch.randn(2, 3, 4, 5, dtype=torch.complex64)
    x0 = complex_to_channels(z0)
    rotated = complex_to_channels(z0 * 1j)
    torch.testing.assert_close(pair_magnitude(x0), z0.abs(), atol=1e-5, rtol=1e-5)
    p = DirectPrediction(magnitude_weight=0.3)
    y = torch.randn_like(x0)
    complex_mse = float(torch.mean((rotated - x0) ** 2))
    assert float(p.training_loss(lambda x, t: rotated, x0, y)) == pytest.approx(0.7 * complex_mse, rel=1e-5)
    estimate = 0.5 * x0
    expected = 0.7 * float(torch.mean((0.5 * x0) ** 2)) + 0.3 * float(torch.mean((0.5 * z0.abs()) ** 2))
    assert float(p.training_loss(lambda x, t: estimate, x0, y)) == pytest.approx(expected, rel=1e-4)
    assert DirectPrediction().config.magnitude_weight == 0.0       # older exports load unchanged
    with pytest.raises(ValueError, match="magnitude_weight"):
        DirectPrediction(magnitude_weight=1.5)
    with pytest.raises(ValueError, match="even"):
        pair_magnitude(torch.randn(1, 3, 2))


def test_direct_prediction_process():
    p = DirectPrediction()
    x0, y = torch.randn(2, 2, 4, 4), torch.randn(2, 2, 4, 4)
    assert torch.equal(p.add_noise(x0, torch.randn_like(x0), 0, y=y), y)
    assert float(p.training_loss(lambda x, t: x0, x0, y)) == 0.0
    with pytest.raises(ValueError):
        p.set_timesteps(3)

"""shared.edm.EDMScheduler and shared.samplers.sample_heun: the Karras grid, the preconditioning, the loss, and
sampling a Gaussian exactly with the ideal denoiser (closed form) on EDM's and ResShift's paths."""

from __future__ import annotations

import math

import pytest
import torch

from shared.checkpoints import PROCESSES
from shared.edm import EDMScheduler
from shared.processes import ResShiftScheduler
from shared.protocol import GaussianPath, path_at
from shared.samplers import SAMPLERS, sample, sample_deterministic


def ideal_denoiser(process, m: float, tau: float, y: torch.Tensor):
    """``E[x0 | x_t]`` for ``x0 ~ N(m, tau^2)`` per element on the path ``x = a x0 + b y + s eps``:
    ``m + a tau^2 (x - a m - b y) / (a^2 tau^2 + s^2)``."""
    def denoise(x, t):
        a, b, s = path_at(process, t, x)
        return m + a * tau**2 * (x - a * m - b * y) / (a**2 * tau**2 + s**2)
    return denoise


def test_grid_and_registration():
    edm = EDMScheduler()
    assert isinstance(edm, GaussianPath) and PROCESSES["EDMScheduler"] is EDMScheduler
    assert SAMPLERS[edm.default_sampler].__name__ == "sample_heun"
    edm.set_timesteps(18)
    s = edm.timesteps.double()
    assert len(s) == 18 and s[0] == pytest.approx(80.0) and s[-1] == pytest.approx(0.002, rel=1e-4)
    assert torch.all(s[1:] < s[:-1])
    # Karras spacing: sigma^(1/rho) is evenly spaced
    torch.testing.assert_close(torch.diff(s ** (1 / 7)), torch.full((17,), float(torch.diff(s ** (1 / 7))[0]), dtype=torch.float64),
                               rtol=1e-4, atol=1e-6)
    edm.set_timesteps(5, start=1.0)
    assert float(edm.timesteps[0]) == pytest.approx(1.0)
    t = edm.model_time(torch.tensor([0.002, 80.0]))
    torch.testing.assert_close(t, torch.tensor([0.0, 1000.0]), rtol=0, atol=1e-3)
    with pytest.raises(ValueError):
        EDMScheduler(sigma_min=1.0, sigma_max=0.5)


def test_preconditioning_limits():
    edm = EDMScheduler(sigma_data=0.5)
    y, x = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.7)
    # F = 0: x0_hat = y + c_skip (x - y), c_skip -> 1 as sigma -> 0 and -> 0 as sigma -> inf
    small = edm.network_output(torch.zeros_like(x), x, y, torch.tensor([1e-4]))
    large = edm.network_output(torch.zeros_like(x), x, y, torch.tensor([1e4]))
    torch.testing.assert_close(small, x, atol=1e-6, rtol=0)
    torch.testing.assert_close(large, y, atol=1e-6, rtol=0)
    # c_in makes the network input unit-variance for a residual of std s_d at any sigma
    sigma = 3.0
    r = 0.5 * torch.randn(20000) + sigma * torch.randn(20000)
    assert float(edm.network_input(r, torch.zeros_like(r), torch.tensor(sigma)).std()) == pytest.approx(1.0, abs=0.03)


def test_training_loss_of_the_ideal_denoiser_is_its_weighted_posterior_variance():
    tau, sd = 0.5, 0.5
    edm = EDMScheduler(sigma_data=sd)
    x0 = tau * torch.randn(100_000, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    y = torch.zeros_like(x0)
    loss = edm.training_loss(ideal_denoiser(edm, 0.0, tau, y), x0, y, generator=torch.Generator().manual_seed(0))
    # lambda(sigma) * Var[x0 | x] = (sigma^2 + sd^2) / (sigma sd)^2 * tau^2 sigma^2 / (tau^2 + sigma^2) = 1 for tau = sd
    assert float(loss) == pytest.approx(1.0, rel=0.02)          # a Monte Carlo mean: 0.45 % standard error


@pytest.mark.parametrize("make,steps,nfe,rel", [
    (lambda: EDMScheduler(sigma_min=0.002, sigma_max=8.0, sigma_data=0.1), 36, 71, 0.02),
    # ResShift's 15-step grid (not Karras-spaced, its last level sigma = 0.04) is coarser: 7 % here
    (lambda: ResShiftScheduler(num_train_timesteps=15, kappa=1.0, min_noise_level=0.04, etas_end=0.99, power=0.3), 15, 29,
     0.1),
])
def test_heun_samples_a_gaussian_with_the_ideal_denoiser(make, steps, nfe, rel):
    process = make()
    m, tau = 0.3, 0.1
    y = torch.full((40000, 1), m)          # the prior y + sigma_max eps is then the exact marginal's mean
    denoise = ideal_denoiser(process, m, tau, y)
    x, count = sample(denoise, process, y, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                      **({} if isinstance(process, EDMScheduler) else {"deterministic": False}))
    if not isinstance(process, EDMScheduler):                                  # ResShift's default is posterior
        x, count = SAMPLERS["heun"](denoise, process, y, num_inference_steps=steps,
                                    generator=torch.Generator().manual_seed(0))
    assert count == nfe
    assert float(x.mean()) == pytest.approx(m, abs=3e-3)
    assert float(x.std()) == pytest.approx(tau, rel=rel)


def test_heun_converges_at_second_order_to_the_exact_flow():
    """The probability-flow ODE of a Gaussian has the closed-form solution
    ``x(0) = m + (x_max - m) tau / sqrt(tau^2 + sigma_max^2)``; doubling the steps cuts Heun's error ~4x."""
    edm = EDMScheduler(sigma_min=0.002, sigma_max=8.0, sigma_data=0.1)
    m, tau = 0.3, 0.1
    y = torch.full((4000, 1), m)
    denoise = ideal_denoiser(edm, m, tau, y)
    start = edm.prior_sample(y, generator=torch.Generator().manual_seed(0))
    exact = m + (start - m) * tau / math.sqrt(tau**2 + 8.0**2)
    errors = [float((SAMPLERS["heun"](denoise, edm, y, num_inference_steps=n, x_start=start)[0] - exact).abs().max())
              for n in (18, 36, 72)]
    assert errors[1] < 0.3 * errors[0] and errors[2] < 0.3 * errors[1] and errors[2] < 2e-3


def test_heun_beats_euler_at_the_same_evaluations():
    edm = EDMScheduler(sigma_min=0.002, sigma_max=8.0, sigma_data=0.1)
    m, tau = 0.3, 0.1
    y = torch.full((40000, 1), m)
    denoise = ideal_denoiser(edm, m, tau, y)
    heun, _ = SAMPLERS["heun"](denoise, edm, y, num_inference_steps=18, generator=torch.Generator().manual_seed(0))
    euler, _ = sample_deterministic(denoise, edm, y, num_inference_steps=36, generator=torch.Generator().manual_seed(0))
    assert abs(float(heun.std()) - tau) < abs(float(euler.std()) - tau)
    assert math.isfinite(float(heun.mean()))

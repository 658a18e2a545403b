"""EDM's preconditioning of the residual on any residual path (shared.preconditioning) and ResShift's
``sigma_data`` option that uses it."""

from __future__ import annotations

import math

import pytest
import torch

from shared.preconditioning import path_scales, residual_coefficients, residual_input, residual_output, residual_weight
from shared.processes import ResShiftScheduler

SD = 0.05


@pytest.mark.parametrize("a, s", [(1.0, 0.004), (0.9, 0.05), (0.6, 0.13), (0.02, 0.2)])
def test_skip_is_the_least_squares_estimate_and_c_out_its_error(a, s):
    """For a residual ``r ~ N(0, s_d^2)`` and ``u = r + (s/a) eps``: ``E|r - c_skip u|^2 = c_out^2``, no other
    multiple of ``u`` does better, and the backbone's input and target both have unit variance."""
    g = torch.Generator().manual_seed(0)
    r = SD * torch.randn(400_000, generator=g)
    u = r + (s / a) * torch.randn(400_000, generator=g)
    c_in, c_skip, c_out = (float(c) for c in residual_coefficients(torch.tensor(a), torch.tensor(s), SD))
    mse = torch.mean((r - c_skip * u) ** 2)
    assert mse.item() == pytest.approx(c_out**2, rel=0.02)
    for factor in (0.9, 1.1) if c_skip > 0.1 else ():   # near y the estimate hardly depends on u
        assert torch.mean((r - factor * c_skip * u) ** 2) > mse
    assert torch.var(c_in * u).item() == pytest.approx(1.0, rel=0.02)
    assert torch.var((r - c_skip * u) / c_out).item() == pytest.approx(1.0, rel=0.02)
    assert float(residual_weight(torch.tensor(a), torch.tensor(s), SD)) == pytest.approx(1 / c_out**2, rel=1e-6)


def test_input_and_output_invert_on_the_path():
    """``residual_output`` of the ideal target ``F* = (x0 - y - c_skip u) / c_out`` is exactly ``x0``."""
    g = torch.Generator().manual_seed(1)
    x0, y, eps = (torch.randn(3, 1, 4, 4, generator=g) for _ in range(3))
    a, s = torch.tensor(0.7), torch.tensor(0.1)
    x_t = a * x0 + (1 - a) * y + s * eps
    _, c_skip, c_out = residual_coefficients(a, s, SD)
    target = (x0 - y - c_skip * (x_t - y) / a) / c_out
    torch.testing.assert_close(residual_output(target, x_t, y, a, s, SD), x0, atol=1e-5, rtol=1e-5)
    c_in, _, _ = residual_coefficients(a, s, SD)
    torch.testing.assert_close(residual_input(x_t, y, a, s, SD), c_in * (x_t - y) / a)


def test_resshift_default_keeps_its_own_preconditioning():
    p = ResShiftScheduler(num_train_timesteps=4, kappa=0.2, min_noise_level=0.02)
    x, y, out = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    t = torch.tensor([0, 3])
    torch.testing.assert_close(p.network_input(x, y, t), p.scale_model_input(x, t))
    assert p.network_output(out, x, y, t) is out


def test_resshift_sigma_data_uses_the_residual_path():
    """Path ``a = 1 - eta``, ``s = kappa sqrt(eta)``: at the smallest noise the untrained (``F = 0``) estimate
    is ``x_t`` to within the noise level, at the largest it is ``y``."""
    p = ResShiftScheduler(num_train_timesteps=4, kappa=0.2, min_noise_level=0.02, power=1.0, sigma_data=SD)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(1, 1, 16, 16, generator=g)
    y = x0 + SD * torch.randn(1, 1, 16, 16, generator=g)
    a, s = path_scales(p, torch.tensor([0]), x0)
    eta = float(p.eta(0))
    assert float(a) == pytest.approx(1 - eta) and float(s) == pytest.approx(0.2 * math.sqrt(eta))
    low = p.add_noise(x0, torch.randn(x0.shape, generator=g), torch.tensor([0]), y=y)
    assert (p.network_output(torch.zeros_like(x0), low, y, torch.tensor([0])) - low).abs().max() < 4 * 0.2 * 0.02
    high = p.add_noise(x0, torch.randn(x0.shape, generator=g), torch.tensor([3]), y=y)
    zero_estimate = p.network_output(torch.zeros_like(x0), high, y, torch.tensor([3]))
    assert (zero_estimate - y).abs().max() < 0.01 * (high - y).abs().max()


def test_resshift_sigma_data_loss_is_unit_weighted_in_the_backbone_output():
    """With a denoiser off by ``delta c_out(t)`` at every timestep, the weighted loss is exactly ``delta^2``."""
    p = ResShiftScheduler(num_train_timesteps=4, kappa=0.2, min_noise_level=0.02, sigma_data=SD)
    x0, y = torch.randn(8, 1, 4, 4), torch.randn(8, 1, 4, 4)
    delta = 0.3

    def denoise(x_t, t):
        _, _, c_out = residual_coefficients(*path_scales(p, t, x0), SD)
        return x0 + delta * c_out

    assert p.training_loss(denoise, x0, y).item() == pytest.approx(delta**2, rel=1e-4)


def test_resshift_sigma_data_saves_and_rejects_bad_values(tmp_path):
    p = ResShiftScheduler(num_train_timesteps=4, kappa=0.2, sigma_data=SD)
    p.save_config(tmp_path)
    assert ResShiftScheduler.from_pretrained(tmp_path).config.sigma_data == SD
    with pytest.raises(ValueError, match="sigma_data"):
        ResShiftScheduler(sigma_data=0.0)


@pytest.mark.parametrize("power", [0.3, 1.0])
def test_x0_variance_restores_the_spread_of_few_step_sampling(power):
    """Gaussian residual ``x0 - y ~ N(0, s_d^2)`` and its exact (linear) denoiser: 4 posterior steps give about
    half the spread; with Analytic-DPM's ``x0_variance`` (measured by ``x0_error``) 2 and 4 steps give it all."""
    from shared.samplers import sample_posterior

    kwargs = dict(num_train_timesteps=4, kappa=0.2, min_noise_level=0.02, power=power, sigma_data=SD)
    plain = ResShiftScheduler(**kwargs)
    y = torch.zeros(20_000, 1, 1, 1)

    def exact(x, t):
        a, s = path_scales(plain, t, x)
        return y + residual_coefficients(a, s, SD)[1] * (x - y) / a

    g = torch.Generator().manual_seed(0)
    gamma = plain.x0_error(exact, SD * torch.randn(y.shape, generator=g), y, generator=g)
    assert float(gamma[-1]) == pytest.approx(SD**2, rel=0.05)      # at the top the estimate is y: error s_d^2
    widened = ResShiftScheduler(**kwargs, x0_variance=gamma.tolist())
    spread = lambda p, n: float(sample_posterior(exact, p, y, num_inference_steps=n, generator=g)[0].std()) / SD  # noqa: E731
    assert spread(plain, 4) < 0.65
    assert spread(widened, 4) == pytest.approx(1.0, abs=0.05) and spread(widened, 2) == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="x0_variance"):
        ResShiftScheduler(**kwargs, x0_variance=[0.1, 0.2])

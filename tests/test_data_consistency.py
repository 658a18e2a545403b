"""Data consistency through the samplers' step hook (issue 13, core part), on a toy masked-Fourier
operator: the measurement model of single-coil Cartesian MRI, written here with torch.fft so the
core stays free of any vertical."""

from __future__ import annotations

import pytest
import torch

from shared.complex import channels_to_complex, complex_to_channels
from shared.consistency import sample_consistency
from shared.data_consistency import DataConsistency, LinearMeasurement, project
from shared.processes import GaussianDiffusion, ResShiftScheduler
from shared.samplers import sample_deterministic, sample_posterior, sample_predictor_corrector
from shared.sde import OUVEScheduler


def masked_fourier(mask: torch.Tensor):
    """``A x = M F x`` with ``F`` the orthonormal 2-D FFT of the complex image in ``x``'s channels."""

    def forward(x):
        return mask * torch.fft.fft2(channels_to_complex(x), norm="ortho")

    def adjoint(k):
        return complex_to_channels(torch.fft.ifft2(mask * k, norm="ortho"))

    return forward, adjoint


def problem(seed: int = 0, size: int = 16):
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(2, 2, size, size, generator=g)           # a complex image as two channels
    mask = (torch.rand(1, 1, 1, size, generator=g) < 0.3).float()
    mask[..., :3] = 1                                           # some lines always measured
    forward, adjoint = masked_fourier(mask)
    return truth, mask, LinearMeasurement(forward, adjoint, forward(truth))


def test_complex_channels_round_trip():
    z = torch.randn(2, 3, 5, 4, dtype=torch.complex64)
    x = complex_to_channels(z)
    assert x.shape == (2, 6, 5, 4) and x.dtype == torch.float32
    assert torch.equal(x[:, 2], z[:, 1].real) and torch.equal(x[:, 3], z[:, 1].imag)
    assert torch.equal(channels_to_complex(x), z)
    with pytest.raises(ValueError):
        channels_to_complex(torch.randn(1, 3, 4, 4))


def test_hard_projection_is_exact_on_the_data_and_idempotent():
    truth, mask, m = problem()
    x = torch.randn_like(truth)
    p = project(x, m)
    assert m.residual(p).max() < 1e-6
    torch.testing.assert_close(project(p, m), p, atol=1e-6, rtol=0)
    # the unmeasured lines are x's own: F p = (1 - M) F x + M y
    fx, fp = (torch.fft.fft2(channels_to_complex(v), norm="ortho") for v in (x, p))
    torch.testing.assert_close((1 - mask) * fp, (1 - mask) * fx, atol=1e-5, rtol=0)


def test_soft_projection_weights_the_data_by_its_trust():
    truth, mask, m = problem(1)
    x = torch.randn_like(truth)
    lam = 3.0
    p = project(x, m, trust=lam)
    fx, fp = (torch.fft.fft2(channels_to_complex(v), norm="ortho") for v in (x, p))
    expected = (1 - mask) * fx + mask * (fx + lam * m.measured) / (1 + lam)
    torch.testing.assert_close(fp, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="trust"):
        DataConsistency(m, trust=0.0)


def poor_denoiser(x_t, t):
    """Any network: data consistency must hold whatever the x0 estimate is."""
    return 0.5 * x_t + 0.1


SAMPLERS = {   # name: (process, sampler, keywords, ends on the last x0 estimate)
    "ResShift posterior": (lambda: ResShiftScheduler(), sample_posterior, {}, True),
    "ResShift deterministic": (lambda: ResShiftScheduler(), sample_deterministic, {}, True),
    "DDPM DPM-Solver++": (lambda: GaussianDiffusion(), sample_posterior, {"num_inference_steps": 10}, True),
    "OU predictor-corrector": (lambda: OUVEScheduler(), sample_predictor_corrector, {"num_inference_steps": 5}, False),
    "OU deterministic": (lambda: OUVEScheduler(), sample_deterministic, {"num_inference_steps": 5}, True),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_sampler_ends_consistent_with_hard_dc(name):
    make, sampler, kwargs, ends_on_estimate = SAMPLERS[name]
    truth, mask, m = problem(2)
    y = complex_to_channels(torch.fft.ifft2(m.measured, norm="ortho"))   # the zero-filled image
    seen = []
    dc = DataConsistency(m, then=lambda step: seen.append(step.index))
    out, nfe = sampler(poor_denoiser, make(), y, generator=torch.Generator().manual_seed(0), callback=dc, **kwargs)
    assert len(seen) == nfe and seen == sorted(seen)   # after every network evaluation (PC: two per grid index)
    if not ends_on_estimate:   # SGMSE+ PC returns the predictor mean, a step past the last estimate
        assert m.residual(out).max() < 0.05
        out = dc.project(out)
    assert m.residual(out).max() < 1e-5
    free, _ = sampler(poor_denoiser, make(), y, generator=torch.Generator().manual_seed(0), **kwargs)
    assert m.residual(free).max() > 1e-2        # without it the data are not kept


def test_consistency_multistep_ends_consistent_with_hard_dc():
    truth, mask, m = problem(3)
    y = complex_to_channels(torch.fft.ifft2(m.measured, norm="ortho"))
    process = ResShiftScheduler()
    process.set_timesteps(None)
    grid = torch.arange(len(process.timesteps) + 1, dtype=torch.float32)
    out, nfe = sample_consistency(poor_denoiser, process, y, num_inference_steps=2, grid=grid,
                                  generator=torch.Generator().manual_seed(0), callback=DataConsistency(m))
    assert nfe == 2 and m.residual(out).max() < 1e-5

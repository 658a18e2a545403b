"""The core contract, run over every registered process (diffusers' scheduler test contract, adapted
to the observation ``y``). A new process joins by registering (``shared.checkpoints.register_process``)."""

from __future__ import annotations

import copy
import inspect
import pickle

import pytest
import torch

from shared.checkpoints import PROCESSES
from shared.protocol import GaussianPath, Process
from shared.samplers import SAMPLERS, sample, sample_deterministic

NAMES = sorted(PROCESSES)


def make(name: str):
    return PROCESSES[name]()


def data(seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x0, y, noise = (torch.randn(2, 3, 8, 8, generator=g).to(dtype) for _ in range(3))
    return x0, y, noise


def public(config) -> dict:
    """A config without diffusers' bookkeeping keys (``_class_name``, ``_use_default_values``, ...)."""
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}


def first_step(process):
    """``(t, x_t)`` at the first timestep of the default grid, for ``data()``."""
    process.set_timesteps(None)
    x0, y, noise = data()
    t = process.timesteps[0]
    return t, process.add_noise(x0, noise, t, y=y)


@pytest.mark.parametrize("name", NAMES)
def test_implements_the_protocol(name):
    p = make(name)
    assert isinstance(p, Process)
    assert p.default_sampler in SAMPLERS
    assert isinstance(p.init_noise_sigma, float) and p.init_noise_sigma >= 0
    assert type(p) in p.compatibles
    for method in ("step", "add_noise"):   # y keyword-only: a DDIM-style positional call cannot pass it
        param = inspect.signature(getattr(p, method)).parameters["y"]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name, tmp_path):
    p = make(name)
    p.save_pretrained(tmp_path)
    for q in (type(p).from_pretrained(tmp_path), type(p).from_config(p.config)):
        assert public(q.config) == public(p.config)
        t, x = first_step(p)
        q.set_timesteps(None)
        x0, y, _ = data()
        a = p.step(x0, t, x, y=y, generator=torch.Generator().manual_seed(1)).prev_sample
        b = q.step(x0, t, x, y=y, generator=torch.Generator().manual_seed(1)).prev_sample
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_step_shapes_and_dtypes(name, dtype):
    p = make(name)
    p.set_timesteps(None)
    x0, y, noise = data(dtype=dtype)
    t = p.timesteps[0]
    x = p.add_noise(x0, noise, t, y=y)
    assert x.shape == x0.shape and x.dtype == dtype
    out = p.step(x0, t, x, y=y, generator=torch.Generator().manual_seed(0))
    for v in (out.prev_sample, out.pred_original_sample, out.prev_sample_mean):
        assert v.shape == x0.shape and v.dtype == dtype
    prior = p.prior_sample(y, generator=torch.Generator().manual_seed(0))
    assert prior.shape == y.shape and prior.dtype == dtype


@pytest.mark.parametrize("name", NAMES)
def test_return_dict_tuple_equivalence(name):
    p = make(name)
    t, x = first_step(p)
    x0, y, _ = data()
    out = p.step(x0, t, x, y=y, generator=torch.Generator().manual_seed(2))
    p.set_timesteps(None)   # multistep solvers keep history: start afresh
    tup = p.step(x0, t, x, y=y, generator=torch.Generator().manual_seed(2), return_dict=False)
    assert isinstance(tup, tuple)
    torch.testing.assert_close(tup[0], out.prev_sample)
    torch.testing.assert_close(tup[1], out.pred_original_sample)


@pytest.mark.parametrize("name", NAMES)
def test_pred_original_sample_is_the_x0_estimate(name):
    p = make(name)
    t, x = first_step(p)
    x0, y, _ = data()
    assert torch.equal(p.step(x0, t, x, y=y).pred_original_sample, x0)


@pytest.mark.parametrize("name", NAMES)
def test_generator_determinism(name):
    p = make(name)
    x0, y, _ = data()
    denoise = lambda x, t: 0.5 * x + 0.5 * x0  # noqa: E731
    runs = []
    for seed in (3, 3, 4):
        out, nfe = sample(denoise, make(name), y, generator=torch.Generator().manual_seed(seed))
        runs.append(out)
        assert nfe >= 1
    torch.testing.assert_close(runs[0], runs[1])
    if p.init_noise_sigma > 0:
        assert not torch.allclose(runs[0], runs[2])


@pytest.mark.parametrize("name", NAMES)
def test_set_timesteps_device_and_order(name):
    p = make(name)
    p.set_timesteps(None, device="cpu")
    ts = p.timesteps
    assert ts.device.type == "cpu" and ts.ndim == 1 and len(ts) >= 1
    assert torch.all(ts[1:] < ts[:-1])   # descending


@pytest.mark.parametrize("name", NAMES)
def test_batched_add_noise_is_per_item(name):
    p = make(name)
    p.set_timesteps(None)
    ts = p.timesteps
    x0, y, noise = data()
    both = p.add_noise(x0, noise, torch.stack([ts[0], ts[-1]]), y=y)
    for i, t in enumerate((ts[0], ts[-1])):
        torch.testing.assert_close(both[i], p.add_noise(x0[i:i + 1], noise[i:i + 1], t, y=y[i:i + 1])[0])


@pytest.mark.parametrize("name", NAMES)
def test_deepcopy_and_pickle(name):
    """diffusers' contract: a scheduler survives copy and pickling (DataLoader workers and DDP spawn pickle
    it). In memory only: checkpoints never pickle, they are safetensors + JSON."""
    p = make(name)
    p.set_timesteps(None)
    for q in (copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
        assert public(q.config) == public(p.config)
        torch.testing.assert_close(q.timesteps, p.timesteps)


@pytest.mark.parametrize("name", NAMES)
def test_exact_denoiser_gives_x0_back(name):
    """Every process's default sampler (and the deterministic one on Gaussian paths) ends at x0
    when the denoiser is exact (a point mass at x0)."""
    p = make(name)
    x0, y, _ = data()
    x0 = x0.clamp(-1, 1)   # inside the DDPM solvers' clipping range
    exact = lambda x, t: x0  # noqa: E731
    out, _ = sample(exact, p, y, generator=torch.Generator().manual_seed(0))
    tol = 0.05 * float(x0.abs().max()) if p.default_sampler == "predictor_corrector" else 2e-3
    torch.testing.assert_close(out, x0, atol=tol, rtol=0)
    if isinstance(p, GaussianPath):
        out, _ = sample_deterministic(exact, p, y, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gaussian_paths_match_add_noise(name):
    p = make(name)
    if not isinstance(p, GaussianPath):
        pytest.skip("not a Gaussian path")
    p.set_timesteps(None)
    x0, y, noise = data()
    for t in (p.timesteps[0], p.timesteps[-1]):
        a, b, s = (float(v) for v in p.path_coefficients(t))
        torch.testing.assert_close(p.add_noise(x0, noise, t, y=y), a * x0 + b * y + s * noise)


@pytest.mark.parametrize("name", NAMES)
def test_callback_can_replace_the_x0_estimate(name):
    """The per-step hook sees every evaluation and its replacement reaches the output."""
    from dataclasses import replace

    x0, y, _ = data()
    target = torch.full_like(x0, 0.25)
    seen = []

    def hook(step):
        seen.append(step.index)
        return replace(step, x0_hat=target)

    out, nfe = sample(lambda x, t: x0, make(name), y, generator=torch.Generator().manual_seed(0), callback=hook)
    assert len(seen) == nfe
    tol = 0.05 if make(name).default_sampler == "predictor_corrector" else 2e-3
    torch.testing.assert_close(out, target, atol=tol, rtol=0)

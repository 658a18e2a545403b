"""The core contract, run over every registered process (diffusers' scheduler test contract, adapted
to the observation ``y``). A new process joins by registering (``shared.checkpoints.register_process``)."""

from __future__ import annotations

import copy
import inspect
import pickle
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from shared.checkpoints import PROCESSES
from shared.protocol import GaussianPath, Process
from shared.samplers import SAMPLERS, sample, sample_deterministic

NAMES = sorted(PROCESSES)


def make(name: str):
    return PROCESSES[name]()


@dataclass
class Case:
    """Test data in a process's own format.

    Attributes:
        x0: clean data in the sample's format (what ``add_noise`` takes and the samplers return).
        y: the observation.
        noise: what ``add_noise`` takes as its noise.
        x0_hat: the x0 estimate that is exactly ``x0`` (what the denoiser returns and ``step`` takes).
        target: another clean sample (the callback test's replacement).
        estimate: turns a clean sample into the x0 estimate that is exactly it.
        rough: a plausible, inexact denoiser ``(x_t, t) -> x0_hat``.
    """

    x0: torch.Tensor
    y: torch.Tensor
    noise: torch.Tensor
    x0_hat: torch.Tensor
    target: torch.Tensor
    estimate: Callable[[torch.Tensor], torch.Tensor]
    rough: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gaussian_data(process, seed: int, dtype) -> Case:
    """Continuous data: images ``(2, 3, 8, 8)``; the x0 estimate is a tensor of the same shape."""
    g = torch.Generator().manual_seed(seed)
    x0, y, noise = (torch.randn(2, 3, 8, 8, generator=g).to(dtype) for _ in range(3))
    return Case(x0, y, noise, x0, torch.full_like(x0, 0.25), lambda x: x, lambda x, t: 0.5 * x + 0.5 * x0)


def token_data(process, seed: int, dtype) -> Case:
    """Discrete data for the masked process: tokens ``(2, 16)`` (mask excluded), ``y`` all masks (it gives the
    shape), ``U[0, 1)`` noise; the x0 estimate is a distribution over the vocabulary (one-hot for exact data)
    in ``dtype``; ``rough`` is a uniform guess through the SUBS output."""
    g = torch.Generator().manual_seed(seed)
    vocab, mask = process.config.vocab_size, process.mask_index
    x0 = torch.randint(0, vocab - 1, (2, 16), generator=g)
    x0 = x0 + (x0 >= mask).long()   # any token but the mask
    y = torch.full_like(x0, mask)
    noise = torch.rand(x0.shape, generator=g).to(dtype)

    def estimate(x):
        return F.one_hot(x, vocab).to(dtype)

    def rough(x, t):
        return process.network_output(torch.zeros(*x.shape, vocab, dtype=dtype), x, y, t)

    return Case(x0, y, noise, estimate(x0), torch.full_like(x0, 0 if mask else 1), estimate, rough)


#: data factory per process class name (default: continuous data)
DATA: dict[str, Callable[..., Case]] = {"MaskedDiffusion": token_data}


def data(name: str, seed: int = 0, dtype=torch.float32) -> Case:
    return DATA.get(name, gaussian_data)(make(name), seed, dtype)


def assert_same_sample(out: torch.Tensor, expected: torch.Tensor, atol: float) -> None:
    """Samples agree to ``atol``; token samples exactly."""
    if out.is_floating_point():
        torch.testing.assert_close(out, expected, atol=atol, rtol=0)
    else:
        assert torch.equal(out, expected)


def public(config) -> dict:
    """A config without diffusers' bookkeeping keys (``_class_name``, ``_use_default_values``, ...)."""
    return {k: v for k, v in dict(config).items() if not k.startswith("_")}


def first_step(name, process):
    """``(t, x_t)`` at the first timestep of the default grid, for ``data(name)``."""
    process.set_timesteps(None)
    c = data(name)
    t = process.timesteps[0]
    return t, process.add_noise(c.x0, c.noise, t, y=c.y)


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
        t, x = first_step(name, p)
        q.set_timesteps(None)
        c = data(name)
        a = p.step(c.x0_hat, t, x, y=c.y, generator=torch.Generator().manual_seed(1)).prev_sample
        b = q.step(c.x0_hat, t, x, y=c.y, generator=torch.Generator().manual_seed(1)).prev_sample
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", NAMES)
def test_step_shapes_and_dtypes(name, dtype):
    """States keep the data's shape and dtype (``dtype`` for continuous data; token states stay integer
    while the noise and the x0 estimate, a distribution, take ``dtype``); the x0 estimate keeps its own."""
    p = make(name)
    p.set_timesteps(None)
    c = data(name, dtype=dtype)
    assert c.x0_hat.dtype == dtype
    t = p.timesteps[0]
    x = p.add_noise(c.x0, c.noise, t, y=c.y)
    assert x.shape == c.x0.shape and x.dtype == c.x0.dtype
    out = p.step(c.x0_hat, t, x, y=c.y, generator=torch.Generator().manual_seed(0))
    for v in (out.prev_sample, out.prev_sample_mean):
        assert v.shape == c.x0.shape and v.dtype == c.x0.dtype
    assert out.pred_original_sample.shape == c.x0_hat.shape and out.pred_original_sample.dtype == dtype
    prior = p.prior_sample(c.y, generator=torch.Generator().manual_seed(0))
    assert prior.shape == c.y.shape and prior.dtype == c.x0.dtype


@pytest.mark.parametrize("name", NAMES)
def test_return_dict_tuple_equivalence(name):
    p = make(name)
    t, x = first_step(name, p)
    c = data(name)
    out = p.step(c.x0_hat, t, x, y=c.y, generator=torch.Generator().manual_seed(2))
    p.set_timesteps(None)   # multistep solvers keep history: start afresh
    tup = p.step(c.x0_hat, t, x, y=c.y, generator=torch.Generator().manual_seed(2), return_dict=False)
    assert isinstance(tup, tuple)
    torch.testing.assert_close(tup[0], out.prev_sample)
    torch.testing.assert_close(tup[1], out.pred_original_sample)


@pytest.mark.parametrize("name", NAMES)
def test_pred_original_sample_is_the_x0_estimate(name):
    p = make(name)
    t, x = first_step(name, p)
    c = data(name)
    assert torch.equal(p.step(c.x0_hat, t, x, y=c.y).pred_original_sample, c.x0_hat)


@pytest.mark.parametrize("name", NAMES)
def test_generator_determinism(name):
    p = make(name)
    c = data(name)
    runs = []
    for seed in (3, 3, 4):
        out, nfe = sample(c.rough, make(name), c.y, generator=torch.Generator().manual_seed(seed))
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
    c = data(name)
    x0, y, noise = c.x0, c.y, c.noise
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
    c = data(name)
    x0 = c.x0.clamp(-1, 1) if c.x0.is_floating_point() else c.x0   # inside the DDPM solvers' clipping range
    x0_hat = c.estimate(x0)
    exact = lambda x, t: x0_hat  # noqa: E731
    out, _ = sample(exact, p, c.y, generator=torch.Generator().manual_seed(0))
    tol = 0.05 * float(x0.abs().max()) if p.default_sampler == "predictor_corrector" else 2e-3
    assert_same_sample(out, x0, tol)
    if isinstance(p, GaussianPath):   # no deterministic (probability-flow) sampler off Gaussian paths
        out, _ = sample_deterministic(exact, p, c.y, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_gaussian_paths_match_add_noise(name):
    p = make(name)
    if not isinstance(p, GaussianPath):
        pytest.skip("not a Gaussian path")
    p.set_timesteps(None)
    c = data(name)
    x0, y, noise = c.x0, c.y, c.noise
    for t in (p.timesteps[0], p.timesteps[-1]):
        a, b, s = (float(v) for v in p.path_coefficients(t))
        torch.testing.assert_close(p.add_noise(x0, noise, t, y=y), a * x0 + b * y + s * noise)


@pytest.mark.parametrize("name", NAMES)
def test_callback_can_replace_the_x0_estimate(name):
    """The per-step hook sees every evaluation and its replacement reaches the output."""
    from dataclasses import replace

    c = data(name)
    seen = []

    def hook(step):
        seen.append(step.index)
        return replace(step, x0_hat=c.estimate(c.target))

    out, nfe = sample(lambda x, t: c.x0_hat, make(name), c.y, generator=torch.Generator().manual_seed(0),
                      callback=hook)
    assert len(seen) == nfe
    tol = 0.05 if make(name).default_sampler == "predictor_corrector" else 2e-3
    assert_same_sample(out, c.target, tol)

"""Property-based tests (hypothesis) of the shared tiling and both pipelines: random shapes, dtypes,
ranges, channel counts, rates and tile settings; the invariants every input must keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.tiling import tiled_apply

FAST = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(h=st.integers(1, 70), w=st.integers(1, 70), tile=st.sampled_from([0, 8, 16, 33]),
       overlap=st.integers(0, 7), scale=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**16))
def test_tiling_is_invisible_for_local_functions(h, w, tile, overlap, scale, seed):
    """A pixel-local function gives the same result tiled or whole (Gaussian blend of equal values)."""
    x = torch.rand(1, 2, h, w, generator=torch.Generator().manual_seed(seed))
    fn = lambda t: F.interpolate(t, scale_factor=scale, mode="nearest") * 3 - 1  # noqa: E731
    out = tiled_apply(fn, x, tile or None, min(overlap, max(tile - 1, 0)), scale=scale)
    assert out.shape == (1, 2, h * scale, w * scale)
    torch.testing.assert_close(out, fn(x), atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def sr_pipe(tiny_weights):
    from restore import SuperResolutionPipeline

    return SuperResolutionPipeline.from_pretrained(tiny_weights, device="cpu")


images = st.tuples(st.integers(2, 24), st.integers(2, 24), st.sampled_from([None, 1, 2, 3, 4]),
                   st.sampled_from(["uint8", "uint16", "float32", "float64"]), st.integers(0, 2**16))


def make_image(h, w, c, dtype, seed):
    rng = np.random.default_rng(seed)
    shape = (h, w) if c is None else (h, w, c)
    if dtype == "uint8":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, shape).astype(np.uint16)
    return rng.random(shape).astype(dtype)


@FAST
@given(image=images, tile=st.sampled_from([0, 8, 12]))
def test_sr_keeps_kind_dtype_and_scale(sr_pipe, image, tile):
    arr = make_image(*image)
    out = sr_pipe(arr, tile=tile)
    assert out.shape == (arr.shape[0] * 4, arr.shape[1] * 4, *arr.shape[2:])
    assert out.dtype == (arr.dtype if arr.dtype in (np.uint8, np.uint16) else np.float32)
    assert np.all(np.isfinite(out.astype(np.float64)))
    as_tensor = torch.from_numpy(arr.astype(np.float32) / (255 if arr.dtype == np.uint8 else 65535 if arr.dtype == np.uint16 else 1))
    chw = as_tensor[None] if as_tensor.ndim == 2 else as_tensor.permute(2, 0, 1)
    t = sr_pipe(chw.contiguous(), tile=tile)
    assert isinstance(t, torch.Tensor) and t.shape == (chw.shape[0], chw.shape[1] * 4, chw.shape[2] * 4)


@FAST
@given(image=images, seed=st.integers(0, 1000))
def test_sr_seeded_teacher_runs_are_identical(sr_pipe, image, seed):
    arr = make_image(*image)
    a = sr_pipe(arr, num_inference_steps=2, seed=seed, tile=0)
    b = sr_pipe(arr, num_inference_steps=2, seed=seed, tile=0)
    assert np.array_equal(a, b)


@pytest.fixture(scope="module")
def enhancer(tiny_audio_weights):
    from audio.enhancer import SpeechEnhancer

    return SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu")


@FAST
@given(channels=st.integers(1, 3), rate=st.sampled_from([8000, 16000, 22050, 44100]),
       seconds=st.floats(0.3, 1.2), dtype=st.sampled_from(["float32", "float64", "int16"]),
       flat=st.booleans(), seed=st.integers(0, 2**16))
def test_speech_keeps_shape_dtype_and_rate(enhancer, channels, rate, seconds, dtype, flat, seed):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = (0.3 * rng.standard_normal((channels, n))).clip(-1, 1)
    x = (x * 32767).astype(np.int16) if dtype == "int16" else x.astype(dtype)
    x = x[0] if flat else x
    out = enhancer(x, rate, method="predictive", seed=seed)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert np.all(np.isfinite(out.astype(np.float64)))

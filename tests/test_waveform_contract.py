"""The speech pipeline's input contract (audio.waveform): layouts, sample types, rates, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio.enhancer import SpeechEnhancer
from audio.waveform import sample_rate_of, waveform_from_user, waveform_to_user
from shared.files import InputError


@pytest.fixture(scope="module")
def enhancer(tiny_audio_weights):
    return SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu")


@pytest.mark.parametrize("dtype, scale", [(np.int16, 32768), (np.int32, 2**31), (np.int8, 128)])
def test_integer_pcm_round_trips_at_full_scale(dtype, scale):
    pcm = (np.sin(np.linspace(0, 20, 1000)) * 0.5 * scale).astype(dtype)
    x, kind = waveform_from_user(pcm)
    assert x.dtype == torch.float32 and float(x.abs().max()) == pytest.approx(0.5, abs=0.01)
    back = waveform_to_user(x, kind)
    tolerance = max(1, scale / 2**23)   # float32 carries 24 bits
    assert back.dtype == dtype and back.shape == pcm.shape and np.abs(back.astype(np.int64) - pcm).max() <= tolerance


def test_uint8_is_offset_pcm():
    x, _ = waveform_from_user(np.array([0, 128, 255], dtype=np.uint8))
    assert x[0].tolist() == pytest.approx([-1.0, 0.0, 127 / 128])


def test_soundfile_layout_needs_channels_first_false():
    data = np.random.default_rng(0).standard_normal((8000, 2)).astype(np.float32)
    with pytest.raises(InputError, match="channels_first=False"):
        waveform_from_user(data)
    x, kind = waveform_from_user(data, channels_first=False)
    assert x.shape == (2, 8000)
    assert np.array_equal(waveform_to_user(x, kind), data)   # same layout back


def test_half_tensors_come_back_in_their_dtype():
    t = torch.randn(2, 4000).to(torch.bfloat16)
    x, kind = waveform_from_user(t)
    assert x.dtype == torch.float32
    assert waveform_to_user(x, kind).dtype == torch.bfloat16


@pytest.mark.parametrize("rate, ok", [(16000, True), (44100.0, True), (np.int64(8000), True), (22050.5, False),
                                      (0, False), (-16000, False), ("16000", False), (True, False)])
def test_sample_rate(rate, ok):
    if ok:
        assert sample_rate_of(rate) == int(rate)
    else:
        with pytest.raises(InputError, match="sample_rate"):
            sample_rate_of(rate)


def test_enhancer_keeps_int16_scale_and_layout(enhancer, speech_clip):
    pcm = (speech_clip[:16000] * 32767).astype(np.int16)
    stereo = np.stack([pcm, pcm // 2], axis=1)            # soundfile's (L, C)
    out = enhancer(stereo, 16000, method="predictive", channels_first=False)
    assert out.dtype == np.int16 and out.shape == stereo.shape
    assert np.abs(out).max() > 1000                       # int16 scale, not float at int16 scale
    as_float = enhancer(stereo.T.astype(np.float32) / 32768, 16000, method="predictive")
    assert np.abs(out.T / 32768 - as_float).max() < 2e-3
    with pytest.raises(InputError, match="channels_first"):
        enhancer(stereo, 16000, method="predictive")


def test_enhancer_takes_bfloat16_tensors_float_rates_and_no_seed(enhancer, speech_clip):
    t = torch.from_numpy(speech_clip[:16000]).to(torch.bfloat16)
    out = enhancer(t, 16000.0, method="sgmse", steps=1, seed=None)
    assert out.dtype == torch.bfloat16 and out.shape == t.shape
    a = enhancer(speech_clip[:16000], 16000, method="sgmse", steps=1, seed=None)
    b = enhancer(speech_clip[:16000], 16000, method="sgmse", steps=1, seed=None)
    assert not np.array_equal(a, b)                       # unseeded runs draw fresh noise
    with pytest.raises(InputError, match="sample_rate"):
        enhancer(speech_clip[:16000], 22050.5)

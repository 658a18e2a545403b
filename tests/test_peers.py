"""experiments.audio.peers: DeepFilterNet 3 and RNNoise on 16 kHz clips keep the length, line up with the
reference sample for sample (their 48 kHz delays removed), and clean white noise off real speech."""

from __future__ import annotations

import numpy as np
import pytest

from audio.metrics import si_sdr
from experiments.audio.peers import PEERS


def lag(a: np.ndarray, b: np.ndarray, most: int = 400) -> int:
    """The shift ``k`` (samples) maximising the correlation of ``a[k:]`` with ``b``."""
    def corr(k):
        return float(np.dot(a[max(0, k):len(a) + min(0, k)], b[max(0, -k):len(b) - max(0, k)]))
    return max(range(-most, most + 1), key=corr)


@pytest.fixture(scope="module")
def speech():
    from audio.data import validation_clips

    return validation_clips(count=1, conditions=("snr10",))[0]["clean"]


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_is_aligned_and_removes_white_noise(speech, name):
    rng = np.random.default_rng(0)
    noisy = (speech + rng.normal(0, speech.std(), speech.shape)).astype(np.float32)      # 0 dB white noise
    out = PEERS[name](noisy, 16_000)
    assert out.shape == noisy.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert abs(lag(out, speech)) <= 1
    assert si_sdr(out, speech) > si_sdr(noisy, speech) + 5.0


def test_storm_on_a_peer_starts_from_its_estimate(tiny_audio_weights, speech):
    """StoRM's diffusion stage from a peer's estimate: the peer sees the (normalised) input waveform, the
    predictive model is put back afterwards, and only the diffusion stage's evaluations are counted."""
    from audio.enhancer import SpeechEnhancer
    from experiments.audio.peers import storm_on_peer

    enhancer = SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu")
    predictive = enhancer.models["predictive"]
    seen = []

    def peer(x, rate):
        seen.append((len(x), rate))
        return x

    out, nfe = storm_on_peer(enhancer, peer)(speech[:32000], "denoise", 0)
    enhancer(speech[:32000], 16_000, method="storm", steps=1, seed=0)
    assert out.shape == (32000,) and np.isfinite(out).all()
    assert enhancer.models["predictive"] is predictive and seen and all(r == 16_000 for _, r in seen)
    assert nfe == enhancer.last_run.network_evaluations - enhancer.last_run.tiles


def test_real_esrgan_peer_upscales_x4_in_register():
    """experiments.restore.peers: Real-ESRGAN x4plus on the CPU gives a 4x larger image in [0, 1] that lines up
    with the photo (no shift: it matches the ground truth better than the same output moved by 4 pixels)."""
    import torch
    import torch.nn.functional as F

    from experiments.restore.peers import real_esrgan
    from restore.sr.data import validation_pairs

    item = validation_pairs("bicubic", crop=96)[0]
    lr, hr = item["cond"].add(1).div(2), item["x0"].add(1).div(2)
    out = real_esrgan(lr)
    assert out.shape == hr.shape and out.dtype == torch.float32 and 0 <= float(out.min()) <= float(out.max()) <= 1
    err = F.mse_loss(out, hr).item()
    assert err < F.mse_loss(torch.roll(out, 4, dims=-1), hr).item() and err < 0.02

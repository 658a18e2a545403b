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

"""Quality smoke test of the SHIPPED speech models on held-out voices and texts (never trained on)."""

import numpy as np
import pytest

from audio.enhancer import SpeechEnhancer
from audio.metrics import si_sdr

@pytest.fixture(scope="module")
def clips():
    """Two validation voices reading validation sentences, in pink noise at 5 dB and white noise at 0 dB."""
    from audio.corpus import Voice, synthesize, text_corpus
    from audio.noise import coloured_noise, mix_at_snr

    texts = text_corpus("validation")
    rng = np.random.default_rng(0)
    out = []
    for voice, text, exponent, snr in ((Voice("flite", "slt"), texts[0], 1.0, 5.0),
                                       (Voice("espeak-ng", "en-029", "f5"), texts[1], 0.0, 0.0)):
        assert voice.split == "validation"
        clean = 0.5 * synthesize(voice, text, 160, 50)
        out.append((clean, mix_at_snr(clean, coloured_noise(len(clean), exponent, rng), snr)))
    return out


def test_shipped_onestep_improves_si_sdr(clips):
    enhancer = SpeechEnhancer.from_pretrained(device="cpu")
    for clean, noisy in clips:
        enhanced = enhancer(noisy, 16000, method="onestep")
        assert enhancer.last_run.network_evaluations == 1
        assert si_sdr(enhanced, clean) > si_sdr(noisy, clean) + 3.0

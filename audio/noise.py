"""Noise and reverberation for training pairs: coloured noise, babble, recorded sounds, rooms.

* Coloured noise: white noise shaped to a ``1/f^k`` power spectrum (k = -2..2: violet to brown).
* Babble: several utterances of other voices from the same split, summed.
* Recorded sounds: Debian sound themes and game sound effects (real recordings and music),
  split by package so validation noises are never heard in training.
* Rooms: ``pyroomacoustics`` shoebox rooms sized and absorbed for a target T60 (0.2-1.0 s); the
  impulse response is shifted and scaled so its direct path is a unit impulse at sample 0, which
  makes the dry signal the time-aligned dereverberation target.
"""

from __future__ import annotations

import glob
from typing import Optional

import numpy as np

from .recordings import read_recording
from .spectral import SAMPLE_RATE

RECORDED_NOISE_DIRS = {
    "train": ["/usr/share/sounds/Oxygen-*", "/usr/share/sounds/deepin/stereo/*",
              "/usr/share/games/frozen-bubble/snd/*"],
    "validation": ["/usr/share/sounds/freedesktop/stereo/*", "/usr/share/sounds/Yaru/stereo/*",
                   "/usr/share/games/pingus/data/sounds/*"],
}
NOISE_PACKAGES = ["oxygen-sounds", "deepin-sound-theme", "frozen-bubble-data",
                  "sound-theme-freedesktop", "yaru-theme-sound", "pingus-data"]


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise with power spectrum ``~ 1/f^exponent`` (0 white, 1 pink, 2 brown), unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    noise = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (noise / max(1e-8, np.sqrt(np.mean(noise**2)))).astype(np.float32)


def recorded_noises(split: str) -> list[np.ndarray]:
    """Every recorded sound of ``split`` as float32 mono at 16 kHz (missing packages are skipped)."""
    clips = []
    for pattern in RECORDED_NOISE_DIRS[split]:
        for path in sorted(glob.glob(pattern)):
            audio = read_recording(path)
            if audio is not None and len(audio) >= SAMPLE_RATE // 10 and np.abs(audio).max() > 1e-4:
                clips.append(audio)
    return clips


def loop_to(clip: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of ``clip``, looped if it is shorter."""
    if len(clip) < n:
        clip = np.tile(clip, n // len(clip) + 2)
    start = int(rng.integers(0, len(clip) - n + 1))
    return clip[start:start + n]


def room_impulse_response(rt60: float, rng: np.random.Generator, max_length: Optional[int] = None) -> np.ndarray:
    """Impulse response of a random shoebox room with reverberation time ``rt60`` seconds.

    The room (3-10 m x 3-8 m x 2.5-4 m), source and microphone positions are random; walls get the
    absorption and image-source order that ``pyroomacoustics.inverse_sabine`` gives for ``rt60``.
    The response is normalised so its direct path is ``1`` at index 0.
    """
    import pyroomacoustics as pra

    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4)])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption),
                       max_order=min(max_order, 40))
    margin = 0.5
    src = rng.uniform(margin, dims - margin)
    mic = rng.uniform(margin, dims - margin)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    rir = rir[peak:] / rir[peak]
    if max_length is not None:
        rir = rir[:max_length]
    return rir.astype(np.float32)


def reverberate(dry: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``dry * rir`` truncated to the dry length (direct path aligned with the dry signal)."""
    from scipy.signal import fftconvolve

    return fftconvolve(dry, rir)[: len(dry)].astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + c noise`` with ``c`` chosen so that ``10 log10(P_speech / P_noise) = snr_db``."""
    ps = np.mean(speech**2)
    pn = max(1e-12, np.mean(noise**2))
    return (speech + noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))).astype(np.float32)

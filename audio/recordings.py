"""Installed sound files as 16 kHz mono float32: the recorded noises and voices of the training data.

Formats: whatever libsndfile reads (WAV, FLAC, Ogg Vorbis; resampled with torchaudio when not at 16 kHz)
and raw G.722 (``.g722``, the wide-band telephony codec of the Asterisk prompts; always 16 kHz), which
PyAV's bundled ffmpeg decodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .spectral import SAMPLE_RATE

SOUND_SUFFIXES = (".wav", ".ogg", ".oga", ".opus", ".flac", ".g722")


def read_g722(path: str | Path) -> np.ndarray:
    """Decode a raw G.722 file (16 kHz mono) to float32 samples in [-1, 1]."""
    import av

    with av.open(str(path), format="g722") as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    audio = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    return (audio.astype(np.float32) / 32768.0) if audio.dtype == np.int16 else audio.astype(np.float32)


def read_recording(path: str | Path) -> Optional[np.ndarray]:
    """The file as float32 mono at 16 kHz (channels averaged), or ``None`` if it is not a sound file
    these readers can decode."""
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    path = Path(path)
    if path.suffix.lower() not in SOUND_SUFFIXES:
        return None
    if path.suffix.lower() == ".g722":
        return read_g722(path)
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        return None
    if audio.size == 0:
        return None
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        audio = AF.resample(torch.from_numpy(audio), sr, SAMPLE_RATE).numpy()
    return audio.astype(np.float32)

"""Audio files for the command line: read any file libsndfile reads, write the types in
:data:`audio.options.FORMATS`, and know before any work whether an output can hold an input.

An output keeps the input's sample rate and channel count, and its sample format where the
output type can hold it: a plain one (PCM, float, u-law, A-law), or a codec when input and
output are of the same type (Ogg Vorbis/Opus, MP3); otherwise the output type's default
(for example an MP3 read and written as WAV becomes 16-bit PCM). Some combinations cannot be
written at all (MP3 holds at most 2 channels at 8 to 48 kHz, Opus 8, 12, 16, 24 or 48 kHz):
:func:`check_writable` says so, naming the input, before anything is processed.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

from shared.files import InputError, atomic_write

from .options import EXTENSIONS, FORMATS

#: Sample formats any output type may keep when it can hold them.
PLAIN_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"}


def _reason(err: Exception) -> str:
    """libsndfile's own words, without the file name (which may be a temporary file or a buffer)."""
    text = getattr(err, "error_string", None) or str(err)
    return text.replace("Error : ", "").strip().splitlines()[0][:160]


def read_info(path: Path):
    """libsndfile's header information of ``path`` (``samplerate``, ``channels``, ``format``,
    ``subtype``); :class:`InputError` naming the file if it cannot be read."""
    try:
        return sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise InputError(f"{path}: cannot read audio ({str(err).splitlines()[0][:120]})") from None


def read_audio(path: Path):
    """``(samples (C, L) float32, info)`` with ``info`` as :func:`read_info`; :class:`InputError` if unreadable."""
    info = read_info(path)
    try:
        data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise InputError(f"{path}: cannot read audio ({str(err).splitlines()[0][:120]})") from None
    return data.T.copy(), info


def output_format(target: Path, info) -> tuple[str, str]:
    """``(format, subtype)`` that ``target`` is written with for an input described by ``info``."""
    ext = target.suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{target}: unsupported output type '{target.suffix}' (use {', '.join(EXTENSIONS)})")
    fmt, subtype = FORMATS[ext]
    if subtype is not None:
        return fmt, subtype
    keep = info.subtype in PLAIN_SUBTYPES or info.format == fmt
    if keep and sf.check_format(fmt, info.subtype):
        return fmt, info.subtype
    return fmt, sf.default_subtype(fmt)


def check_writable(source: Path, target: Path) -> None:
    """:class:`InputError` naming ``source`` if ``target``'s type cannot hold its audio (rate,
    channels) or this libsndfile cannot write that type. Opens the encoder on a memory buffer;
    nothing touches the disk. An unreadable ``source`` passes here: reading it reports it."""
    try:
        info = sf.info(str(source))
    except (RuntimeError, sf.LibsndfileError, ValueError):
        return
    fmt, subtype = output_format(target, info)
    try:
        with sf.SoundFile(io.BytesIO(), "w", samplerate=info.samplerate, channels=info.channels,
                          format=fmt, subtype=subtype):
            pass
    except (RuntimeError, sf.LibsndfileError, ValueError, TypeError) as err:
        raise InputError(f"{source}: {info.channels} channel(s) at {info.samplerate} Hz cannot be written as "
                         f"{target.suffix} ({fmt} {subtype}: {_reason(err)})") from None


def write_audio(path: Path, samples: np.ndarray, rate: int, info) -> None:
    """Write ``samples (C, L)`` atomically in the format :func:`output_format` picks for ``info``."""
    fmt, subtype = output_format(path, info)
    if subtype.startswith("PCM") or subtype in ("ULAW", "ALAW"):
        samples = np.clip(samples, -1.0, 32767 / 32768)
    atomic_write(path, lambda tmp: sf.write(str(tmp), samples.T, rate, subtype=subtype, format=fmt))

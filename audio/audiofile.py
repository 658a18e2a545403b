"""Audio files for the command line: read any file libsndfile reads, write the types in
:data:`audio.options.FORMATS`, and know before any work whether an output can hold an input.

An output keeps the input's sample rate and channel count, and its sample format where the
output type can hold it: a plain one (PCM, float, u-law, A-law), or a codec when input and
output are of the same type (Ogg Vorbis/Opus, MP3); otherwise the output type's default
(for example an MP3 read and written as WAV becomes 16-bit PCM). Some combinations cannot be
written at all (MP3 holds at most 2 channels at 8 to 48 kHz, Opus 8, 12, 16, 24 or 48 kHz):
:func:`check_writable` says so, naming the input, before anything is processed.

Long recordings are streamed: :class:`AudioReader` reads a file block by block (a first pass,
then the spans the enhancer asks for) and :func:`write_audio_stream` writes the output block by
block into the temporary file of :func:`shared.files.atomic_write`, so neither holds more than a
block and a failure or Ctrl-C at any point leaves no output and no temporary file.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import soundfile as sf

from shared.files import InputError, atomic_write

from .options import EXTENSIONS, FORMATS

T = TypeVar("T")

#: Sample formats any output type may keep when it can hold them.
PLAIN_SUBTYPES = {"PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"}


def _reason(err: Exception) -> str:
    """libsndfile's own words, without the file name (which may be a temporary file or a buffer)."""
    text = getattr(err, "error_string", None) or str(err)
    return text.replace("Error : ", "").strip().splitlines()[0][:160]


def _cannot_read(path: Path, err: Exception) -> InputError:
    return InputError(f"{path}: cannot read audio ({str(err).splitlines()[0][:120]})")


def read_info(path: Path):
    """libsndfile's header information of ``path`` (``samplerate``, ``channels``, ``format``,
    ``subtype``); :class:`InputError` naming the file if it cannot be read."""
    try:
        return sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise _cannot_read(path, err) from None


class AudioReader:
    """An audio file open for reading in blocks, float32 ``(C, n)``: :meth:`blocks` for a first
    pass over the whole file, :meth:`read` for the spans the enhancer asks for (a span that
    follows the previous one is read on, anything else is sought). Holds one block; every
    error is an :class:`InputError` naming the file. Use as a context manager."""

    BLOCK = 1 << 16   # frames per block of the first pass

    def __init__(self, path: Path):
        self.path = Path(path)
        self.info = read_info(self.path)
        try:
            self.file = sf.SoundFile(str(self.path))
        except (RuntimeError, sf.LibsndfileError, ValueError) as err:
            raise _cannot_read(self.path, err) from None
        self.rate, self.channels = self.file.samplerate, self.file.channels

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def _read(self, frames: int) -> np.ndarray:
        try:
            return self.file.read(frames, dtype="float32", always_2d=True).T
        except (RuntimeError, sf.LibsndfileError, ValueError) as err:
            raise _cannot_read(self.path, err) from None

    def _seek(self, frame: int) -> None:
        try:
            self.file.seek(frame)
        except (RuntimeError, sf.LibsndfileError, ValueError) as err:
            raise _cannot_read(self.path, err) from None

    def blocks(self, frames: int = BLOCK) -> Iterator[np.ndarray]:
        """The whole file from its start, ``frames`` at a time (the last block shorter)."""
        self._seek(0)
        while (block := self._read(frames)).shape[-1]:
            yield block

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` as a contiguous float32 ``(C, stop - start)``."""
        if self.file.tell() != start:
            self._seek(start)
        block = self._read(stop - start)
        if block.shape[-1] != stop - start:
            raise InputError(f"{self.path}: cannot read audio (frames {start}..{stop} asked, the file ended at "
                             f"{start + block.shape[-1]})")
        return np.ascontiguousarray(block)


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


def write_audio_stream(path: Path, rate: int, channels: int, info, produce: Callable[[Callable], T]) -> T:
    """Write ``path`` atomically, block by block, in the format :func:`output_format` picks for
    ``info``: ``produce(write)`` calls ``write(block (C, n))`` for each block in order and its
    return value is returned. Blocks are clipped to the PCM range where the format is integer.
    Holds one block; if ``produce`` or a write fails (Ctrl-C included), nothing is left at
    ``path`` and no temporary file remains."""
    fmt, subtype = output_format(path, info)
    clip = subtype.startswith("PCM") or subtype in ("ULAW", "ALAW")
    result = []

    def write_file(tmp: Path) -> None:
        with sf.SoundFile(str(tmp), "w", samplerate=rate, channels=channels, format=fmt, subtype=subtype) as f:
            def write(block: np.ndarray) -> None:
                f.write((np.clip(block, -1.0, 32767 / 32768) if clip else block).T)

            result.append(produce(write))

    atomic_write(path, write_file)
    return result[0]


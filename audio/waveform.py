"""The speech pipeline's input contract: what a waveform may be, and how it comes back.

Accepted: numpy arrays or torch tensors, ``(L,)`` or ``(C, L)`` channels first, or soundfile's
``(L, C)`` with ``channels_first=False``; float types (float16, bfloat16, float32, float64, any
range: values beyond [-1, 1] are clipped speech, not an error) and integer PCM (int8, int16,
int32 at their full scale, uint8 offset by 128, as soundfile and WAV store them). A 2-D input
whose layout is not given and whose first axis is the longer one is refused with a message that
names ``channels_first``: a silent transpose would enhance garbage. The output has the input's
kind, dtype (integers rounded and clipped to their range), layout and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Number
from typing import Optional

import numpy as np
import torch

from shared.files import InputError

#: Full scale of integer PCM types: ``float = (int - offset) / scale``.
PCM = {np.dtype(np.int8): (128.0, 0.0), np.dtype(np.int16): (32768.0, 0.0), np.dtype(np.int32): (2.0**31, 0.0),
       np.dtype(np.uint8): (128.0, 128.0)}


@dataclass
class WaveformKind:
    """How to give a result back in the form the user passed in."""

    torch: bool
    dtype: object            # numpy dtype, or torch dtype for tensors
    device: Optional[torch.device]
    ndim: int
    channels_first: bool


def sample_rate_of(sample_rate) -> int:
    """``sample_rate`` as an int; :class:`InputError` unless it is a positive whole number of Hz."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, Number) or sample_rate != sample_rate:
        raise InputError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    if sample_rate <= 0 or float(sample_rate) != int(sample_rate):
        raise InputError(f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def _as_numpy(waveform) -> tuple[np.ndarray, WaveformKind]:
    if isinstance(waveform, torch.Tensor):
        t = waveform.detach()
        kind = WaveformKind(True, t.dtype, t.device, t.ndim, True)
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return t.cpu().numpy(), kind
    if isinstance(waveform, np.ndarray):
        return waveform, WaveformKind(False, waveform.dtype, None, waveform.ndim, True)
    raise InputError(f"unsupported waveform type {type(waveform).__name__}; pass a numpy array or torch tensor")


def waveform_from_user(waveform, channels_first: Optional[bool] = None) -> tuple[torch.Tensor, WaveformKind]:
    """``(channels (C, L) float32, kind)`` from a user waveform (see the module docstring)."""
    arr, kind = _as_numpy(waveform)
    if arr.ndim not in (1, 2):
        raise InputError(f"waveform must be (samples,), (channels, samples) or, with channels_first=False, "
                         f"(samples, channels); got shape {arr.shape}")
    if arr.ndim == 2:
        if channels_first is None and arr.shape[0] > arr.shape[1]:
            raise InputError(f"waveform of shape {arr.shape} looks like (samples, channels): pass "
                             "channels_first=False for that layout (soundfile's), or (channels, samples)")
        kind.channels_first = channels_first is not False
        arr = arr if kind.channels_first else arr.T
    if arr.dtype in PCM:
        scale, offset = PCM[arr.dtype]
        x = (arr.astype(np.float32) - offset) / scale
    elif np.issubdtype(arr.dtype, np.floating):
        x = arr.astype(np.float32)
    else:
        raise InputError(f"unsupported sample type {arr.dtype}; use float, int8/16/32 or uint8 PCM")
    return torch.from_numpy(np.ascontiguousarray(x.reshape(-1, x.shape[-1]))), kind


def waveform_to_user(channels: torch.Tensor, kind: WaveformKind):
    """``channels (C, L)`` float back in the user's kind, dtype, layout and device."""
    x = channels.detach().float().cpu().numpy()
    x = x[0] if kind.ndim == 1 else (x if kind.channels_first else x.T)
    dtype = np.dtype(kind.dtype) if not kind.torch else None
    if kind.torch:
        t = torch.from_numpy(np.ascontiguousarray(x))
        if not kind.dtype.is_floating_point:
            dtype = np.dtype(str(kind.dtype).replace("torch.", ""))
            return torch.from_numpy(_to_pcm(x, dtype)).to(kind.device)
        return t.to(device=kind.device, dtype=kind.dtype)
    return _to_pcm(x, dtype) if dtype in PCM else x.astype(dtype)


def _to_pcm(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float samples to integer PCM of ``dtype``: scaled, rounded, clipped to the type's range."""
    scale, offset = PCM[dtype]
    info = np.iinfo(dtype)
    return np.clip(np.round(x * scale + offset), info.min, info.max).astype(dtype)

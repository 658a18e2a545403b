"""Speech enhancement pipeline: ``SpeechEnhancer.from_pretrained()(waveform, sample_rate)``.

Any sample rate and channel count: each channel is resampled to 16 kHz (torchaudio), peak
normalised, turned into a compressed spectrogram, enhanced in overlapping chunks along time
(:func:`shared.tiling.tiled_apply`, so memory is bounded by one chunk's work however long the
recording), turned back into a waveform, rescaled and resampled to the input rate.

Methods (all share the representation and the task plane, 0 = denoise, 1 = dereverb):

* ``onestep``    consistency model distilled from the score model: 1 evaluation (or 2, 4 with ``steps``);
* ``storm``      predictive estimate, then a shallow diffusion from it (:class:`StormSetting`): by default
                 ``steps`` (default 1) probability-flow steps from t = 0.1 (``steps`` + 2 evaluations);
* ``sgmse``      SGMSE+ predictor-corrector from ``y + sigma(1) z``: ``steps`` (default 30) x 2 evaluations;
* ``predictive`` the predictive network alone: 1 evaluation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from shared.checkpoints import load_denoiser
from shared.consistency import consistency_function, consistency_grid, sample_consistency
from shared.denoiser import predictive_conditioning
from shared.files import InputError, device_from_string
from shared.pipeline import Pipeline, PipelineOutput, RunInfo, as_dtype, grid_multiple, model_folders
from shared.samplers import sample_deterministic, sample_predictor_corrector
from shared.tiling import balanced_tile, count_tiles, tiled_apply

from .options import DEFAULT_STEPS, METHODS, TASKS
from .spectral import SAMPLE_RATE, CompressedSTFT, task_plane
from .waveform import sample_rate_of, waveform_from_user, waveform_to_user

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_NAMES = ("consistency", "predictive", "storm", "score")
MODELS_FOR = {"onestep": ("consistency",), "storm": ("predictive", "storm"), "sgmse": ("score",),
              "predictive": ("predictive",)}
CHUNK_FRAMES = 512             # 4.1 s per chunk
CHUNK_OVERLAP = 64             # 0.5 s cross-fade
MIN_SECONDS = 0.25


@dataclass(frozen=True)
class StormSetting:
    """How ``storm`` diffuses from the predictive estimate ``y_hat`` (StoRM / shallow diffusion).

    The state starts at ``y_hat + sigma(t_start) z`` and runs to ``t_eps`` with either the
    probability-flow ODE (``"ode"``: exponential-integrator steps, ``steps + 1`` evaluations) or
    SGMSE+'s predictor-corrector (``"pc"``: ``steps x (1 + corrector_steps)`` evaluations).
    The default is the best few-step setting measured by ``experiments/audio/tune_storm.py`` on
    tuning clips disjoint from the benchmark's (see the README): a shallow start, because the
    reverse-diffusion predictor overshoots from t = 1 with few large steps.
    """

    sampler: str = "ode"
    t_start: float = 0.1
    corrector_steps: int = 1

    def __post_init__(self):
        if self.sampler not in ("ode", "pc"):
            raise ValueError(f"StoRM sampler must be 'ode' or 'pc', got {self.sampler!r}")
        if not 0.0 < self.t_start <= 1.0:
            raise ValueError(f"StoRM t_start must be in (0, 1], got {self.t_start}")


def check_waveform(wave: np.ndarray, sample_rate: int, name: str = "input") -> None:
    """Raise :class:`InputError` for empty, non-finite, too short or silent audio."""
    if sample_rate <= 0:
        raise InputError(f"{name}: invalid sample rate {sample_rate}")
    if wave.size == 0:
        raise InputError(f"{name}: empty audio (no samples)")
    if not np.all(np.isfinite(wave)):
        raise InputError(f"{name}: audio contains NaN or infinite samples")
    if wave.shape[-1] < MIN_SECONDS * sample_rate:
        raise InputError(f"{name}: too short ({wave.shape[-1] / sample_rate:.3f} s; need at least {MIN_SECONDS} s)")
    if np.abs(wave).max() < 1e-5:
        raise InputError(f"{name}: audio is silent (peak below 1e-5)")


class SpeechEnhancer(Pipeline):
    """Speech denoising and dereverberation with the shipped (or given) models.

    Example::

        from audio import SpeechEnhancer
        enhancer = SpeechEnhancer.from_pretrained()
        clean = enhancer(noisy, 44100)                       # numpy or torch, (L,) or (C, L), float or int PCM
        clean = enhancer(data, rate, channels_first=False)   # soundfile's (L, C)
        dry = enhancer(noisy, 44100, task="dereverb", method="storm", steps=2)
    """

    def __init__(self, models: dict, extras: dict, device: torch.device | str = "cpu", torch_dtype=torch.float32):
        self.models, self.extras = models, extras
        self.stft = CompressedSTFT()
        self.last_run = RunInfo()
        self.storm_setting = StormSetting()   # replace to try another StoRM sampler
        self.frame_multiple = grid_multiple(models.values())   # unshuffle x the backbone's 2x downsamplings
        self.to(device, torch_dtype)

    def modules(self) -> Iterator[torch.nn.Module]:
        return iter(self.models.values())

    def to(self, device=None, dtype=None) -> "SpeechEnhancer":
        super().to(device, dtype)
        self.stft.to(self.device)   # the representation stays float32
        return self

    @classmethod
    def from_pretrained(cls, directory: Optional[str | Path] = None, device: str = "auto",
                        torch_dtype=torch.float32) -> "SpeechEnhancer":
        """Load every model found in ``directory`` (default: the shipped ``audio/weights``):
        sub-folders ``consistency``, ``predictive``, ``storm`` and ``score`` (or one such folder)."""
        dev = device_from_string(device)
        dtype = as_dtype(torch_dtype)
        models, extras = {}, {}
        for folder in model_folders(WEIGHTS_DIR if directory is None else directory, MODEL_NAMES):
            if folder.name not in MODEL_NAMES:
                raise InputError(f"{folder}: a speech model folder must be named one of {', '.join(MODEL_NAMES)}")
            models[folder.name], meta = load_denoiser(folder, device=dev)
            extras[folder.name] = meta["extra"]
        return cls(models, extras, dev, dtype)

    @property
    def methods(self) -> list[str]:
        """Methods whose models are loaded."""
        return [m for m in METHODS if all(n in self.models for n in MODELS_FOR[m])]

    def check_method(self, method: str, steps: Optional[int]) -> int:
        """Validate ``method``/``steps``; returns the number of steps to use."""
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if method not in self.methods:
            missing = [n for n in MODELS_FOR[method] if n not in self.models]
            raise InputError(f"method {method!r} needs the model(s) {', '.join(missing)}, not found in the weights")
        steps = DEFAULT_STEPS[method] if steps is None else int(steps)
        if method == "predictive" and steps != 1:
            raise InputError("method 'predictive' takes exactly one step")
        if method == "onestep":
            top = self.extras["consistency"]["consistency"]["num_intervals"]
            if not 1 <= steps <= top:
                raise InputError(f"method 'onestep' supports 1..{top} steps, got {steps}")
        elif steps < 1:
            raise InputError(f"steps must be >= 1, got {steps}")
        return steps

    # ----------------------------------------------------------------- spectrogram level
    @torch.no_grad()
    def enhance_spectrogram(self, y: torch.Tensor, task: str, method: str, steps: int,
                            generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, int]:
        """Enhance compressed spectrograms ``(B, 2, 256, F)`` (F a multiple of 16); returns ``(x0, nfe)``."""
        u = self.models[MODELS_FOR[method][-1]].unshuffle
        cond = task_plane(task, (y.shape[-2] // u, y.shape[-1] // u), batch=y.shape[0]).to(y)
        if method == "predictive":
            return self.models["predictive"](y, torch.zeros(y.shape[0], dtype=torch.long, device=y.device), y, cond), 1
        if method == "sgmse":
            score = self.models["score"]
            return sample_predictor_corrector(lambda x, t: score(x, t, y, cond), score.process, y,
                                              num_inference_steps=steps, generator=generator)
        if method == "storm":
            storm = self.models["storm"]
            y_hat, cond2 = predictive_conditioning(self.models["predictive"], y, cond, u)
            x, nfe = self._storm_sample(lambda x, t: storm(x, t, y_hat, cond2), storm.process, y_hat, steps,
                                        generator)
            return x, nfe + 1
        model = self.models["consistency"]
        settings = self.extras["consistency"]["consistency"]
        grid = consistency_grid(model.process, settings["num_intervals"])
        f = consistency_function(lambda x, t: model(x, t, y, cond), model.process, settings["sigma_data"], grid[0],
                                 settings.get("noise_level", "marginal"))   # models exported before it was recorded
        return sample_consistency(f, model.process, y, num_inference_steps=steps, grid=grid, generator=generator)

    def _storm_sample(self, model, process, y_hat, steps, generator) -> tuple[torch.Tensor, int]:
        """Diffuse from the predictive estimate as :attr:`storm_setting` says."""
        s = self.storm_setting
        if s.sampler == "ode":   # ``steps`` exponential-integrator steps, then the x0 estimate at t_eps
            return sample_deterministic(model, process, y_hat, num_inference_steps=steps + 1, start=s.t_start,
                                        generator=generator)
        return sample_predictor_corrector(model, process, y_hat, num_inference_steps=steps,
                                          corrector_steps=s.corrector_steps, start=s.t_start, generator=generator)

    # ----------------------------------------------------------------- waveform level
    def enhance_channel(self, wave: torch.Tensor, task: str, method: str, steps: int, seed: int = 0,
                        chunk_frames: Optional[int] = CHUNK_FRAMES, overlap: int = CHUNK_OVERLAP,
                        on_chunk: Optional[Callable[[], None]] = None,
                        generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, int]:
        """Enhance one 16 kHz channel ``(L,)``; returns ``(enhanced (L,), network evaluations)``.
        Randomness comes from ``generator``, or a fresh one seeded with ``seed``."""
        length = wave.shape[-1]
        padded = torch.zeros(self.stft.length_for_frames(self._frames(length)), device=self.device)
        padded[:length] = wave.to(self.device, torch.float32)
        peak = padded.abs().max().clamp_min(1e-8)
        spec = self.stft(padded / peak)[None]
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(seed)
        nfe = 0

        def run(tile: torch.Tensor) -> torch.Tensor:
            nonlocal nfe
            out, n = self.enhance_spectrogram(tile.to(self.dtype), task, method, steps, generator)
            nfe += n
            return out.float()

        if chunk_frames and chunk_frames % self.frame_multiple:
            raise ValueError(f"chunk_frames must be a multiple of {self.frame_multiple}")
        chunk = None
        if chunk_frames:  # tiles are square: never below the bin count, so frequency is never split
            chunk = max(self.stft.bins, balanced_tile(spec.shape[-1], chunk_frames, overlap, self.frame_multiple))
        out = tiled_apply(run, spec, chunk, overlap, progress=on_chunk)
        return self.stft.inverse(out[0], padded.shape[-1])[:length] * peak, nfe

    def num_chunks(self, samples: int, sample_rate: int, chunk_frames: Optional[int] = CHUNK_FRAMES,
                   overlap: int = CHUNK_OVERLAP) -> int:
        """Chunks per channel for a recording of ``samples`` at ``sample_rate``."""
        n16 = int(round(samples * SAMPLE_RATE / sample_rate))
        return count_tiles(self.stft.bins, self._frames(n16), chunk_frames or None, overlap)

    def _frames(self, samples: int) -> int:
        """STFT frames of ``samples`` at 16 kHz, rounded up to the backbone's multiple."""
        return -(-self.stft.frames_to_cover(samples) // self.frame_multiple) * self.frame_multiple

    def __call__(self, waveform, sample_rate: int, task: str = "denoise", method: str = "onestep",
                 steps: Optional[int] = None, seed: Optional[int] = 0, chunk_frames: Optional[int] = CHUNK_FRAMES,
                 overlap: int = CHUNK_OVERLAP, on_chunk: Optional[Callable[[], None]] = None, *,
                 num_inference_steps: Optional[int] = None, generator: Optional[torch.Generator] = None,
                 channels_first: Optional[bool] = None, return_dict: bool = False):
        """Enhance ``waveform`` recorded at ``sample_rate`` (Hz, a whole number); returns the same kind,
        dtype, layout and rate (the input contract is :mod:`audio.waveform`: numpy or torch, ``(L,)``,
        ``(C, L)`` or with ``channels_first=False`` soundfile's ``(L, C)``, float or integer PCM).

        ``num_inference_steps`` (or its older name ``steps``) sets the sampler's steps;
        ``generator`` (or ``seed``: a fresh generator per channel; ``None``: unseeded) drives its
        noise. With ``return_dict=True`` the result comes as :class:`shared.pipeline.PipelineOutput`
        with the run's :class:`~shared.pipeline.RunInfo` (also kept in ``last_run``)."""
        import torchaudio.functional as AF

        start = time.perf_counter()
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if num_inference_steps is not None and steps is not None and num_inference_steps != steps:
            raise InputError("give num_inference_steps or steps, not both")
        steps = self.check_method(method, num_inference_steps if num_inference_steps is not None else steps)
        sample_rate = sample_rate_of(sample_rate)
        channels, kind = waveform_from_user(waveform, channels_first)
        check_waveform(channels.numpy(), sample_rate)
        if generator is None and seed is None:
            generator = torch.Generator()
            generator.seed()
        outputs, nfe = [], 0
        for channel in channels:
            wave16 = AF.resample(channel, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else channel
            if wave16.abs().max() < 1e-5:   # a silent channel of a multi-channel file stays silent
                out16 = torch.zeros_like(wave16)
            else:
                out16, n = self.enhance_channel(wave16, task, method, steps, seed or 0, chunk_frames, overlap,
                                                on_chunk, generator)
                nfe += n
            out = AF.resample(out16.cpu(), SAMPLE_RATE, sample_rate) if sample_rate != SAMPLE_RATE else out16.cpu()
            out = torch.nn.functional.pad(out, (0, max(0, channel.shape[-1] - out.shape[-1])))[: channel.shape[-1]]
            outputs.append(out)
        self.last_run = RunInfo(nfe, self.num_chunks(channels.shape[-1], sample_rate, chunk_frames, overlap),
                                time.perf_counter() - start, channels.shape[0], method)
        result = waveform_to_user(torch.stack(outputs), kind)
        return PipelineOutput(result, self.last_run) if return_dict else result

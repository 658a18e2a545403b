"""Speech enhancement pipeline: ``SpeechEnhancer.from_pretrained()(waveform, sample_rate)``.

Any sample rate and channel count. Each channel is resampled to 16 kHz (torchaudio), peak
normalised, turned into a compressed spectrogram, enhanced in overlapping chunks along time
(:func:`shared.tiling.tiled_apply`), turned back into a waveform, rescaled and resampled to the
input rate.

Memory does not grow with the recording: :meth:`SpeechEnhancer.enhance_stream` reads and writes
a recording span by span and holds at most one segment of it (:class:`SegmentSetting`, 60 s by
default) with that segment's 16 kHz work. A recording longer than a segment is cut into
overlapping segments, each enhanced as above and joined with a raised-cosine crossfade (segment
edges, where resampling and the STFT see a cut, fall where their weight is 0), normalised by the
whole recording's per-channel peak so the level does not change from one segment to the next. A
recording that fits in one segment is enhanced exactly as it was before segments existed. The
in-memory call converts the user's waveform one segment at a time and writes into the output,
so it needs the output array and one segment's work; the command line (:mod:`audio.enhance`)
streams file to file in the same way.

Methods (all share the representation and the task plane, 0 = denoise, 1 = dereverb):

* ``onestep``    consistency model distilled from the score model: 1 evaluation (or 2, 4 with ``steps``);
* ``storm``      predictive estimate, then a shallow diffusion from it (:class:`StormSetting`): by default
                 ``steps`` (default 1) probability-flow steps from t = 0.1 (``steps`` + 2 evaluations);
* ``sgmse``      SGMSE+ predictor-corrector from ``y + sigma(1) z``: ``steps`` (default 30) x 2 evaluations;
* ``predictive`` the predictive network alone: 1 evaluation (the default, :data:`audio.options.DEFAULT_METHOD`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np
import torch

from shared.checkpoints import load_denoiser
from shared.consistency import consistency_function, consistency_grid, sample_consistency
from shared.denoiser import predictive_conditioning
from shared.files import InputError, device_from_string
from shared.memory import release_freed_memory
from shared.pipeline import Pipeline, PipelineOutput, RunInfo, as_dtype, grid_multiple, model_folders
from shared.samplers import sample_deterministic, sample_predictor_corrector
from shared.tiling import balanced_tile, count_tiles, tiled_apply

from .options import DEFAULT_METHOD, DEFAULT_STEPS, METHODS, TASKS
from .spectral import SAMPLE_RATE, CompressedSTFT, task_plane
from .waveform import sample_rate_of, waveform_from_user, waveform_to_user

WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_NAMES = ("consistency", "predictive", "storm", "score")
MODELS_FOR = {"onestep": ("consistency",), "storm": ("predictive", "storm"), "sgmse": ("score",),
              "predictive": ("predictive",)}
CHUNK_FRAMES = 512             # 4.1 s per chunk
CHUNK_OVERLAP = 64             # 0.5 s cross-fade
MIN_SECONDS = 0.25
SILENT_PEAK = 1e-5             # a recording (or one of its channels) below this peak is silent
SEGMENT_SECONDS = 60.0         # input per segment: see SegmentSetting
CROSSFADE_SECONDS = 1.0        # raised-cosine join of two segments
MARGIN_SECONDS = 0.5           # enhanced beyond each join and thrown away (segment edges)

#: ``read(start, stop) -> (C, stop - start) float32``: spans of a recording, asked for in order.
Reader = Callable[[int, int], np.ndarray]
#: ``write(block (C, n) float32)``: the enhanced recording, block after block.
Writer = Callable[[np.ndarray], None]


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


@dataclass(frozen=True)
class SegmentSetting:
    """How a long recording is cut into segments (:meth:`SpeechEnhancer.enhance_stream`).

    A recording of at most ``seconds`` is one segment, enhanced exactly as before segments
    existed. A longer one is cut into the fewest equal segments of at most ``seconds`` that
    overlap their neighbours by ``crossfade + 2 margin``: across each overlap the output is the
    earlier segment's for ``margin``, a raised-cosine crossfade (weights summing to 1) for
    ``crossfade``, then the later segment's. So the ``margin`` next to each cut, where resampling,
    the STFT and the network see an edge, has weight 0.

    Why 60 s: one segment's working memory (its spectrogram and the transforms' temporaries, the
    chunks' accumulators, the resampled copies: ~3 MB per second of segment) is ~170 MB over the
    loaded models, while the joins cost ~5 % more network evaluations (per segment, 2 s of
    overlap and a partly used last chunk). Shorter segments would cost proportionally more work,
    longer ones more memory. Every clip of the shipped benchmark and tests is shorter, so their
    outputs are unchanged. The 0.5 s margin is the context the chunks themselves overlap by
    (:data:`CHUNK_OVERLAP`, 64 frames), and the 1 s crossfade hides what difference remains
    between two segments' outputs.
    """

    seconds: float = SEGMENT_SECONDS
    crossfade: float = CROSSFADE_SECONDS
    margin: float = MARGIN_SECONDS

    def __post_init__(self):
        if self.crossfade <= 0 or self.margin < 0:
            raise ValueError(f"crossfade must be > 0 and margin >= 0 seconds, got {self.crossfade}, {self.margin}")
        if self.seconds < 3 * self.crossfade + 2 * self.margin:
            raise ValueError(f"segments of {self.seconds} s cannot hold two joins of {self.crossfade} s crossfade "
                             f"and {self.margin} s margins (need >= {3 * self.crossfade + 2 * self.margin} s)")

    def samples(self, sample_rate: int) -> tuple[int, int, int]:
        """``(segment, crossfade, margin)`` in samples at ``sample_rate``."""
        fade, margin = max(1, round(self.crossfade * sample_rate)), round(self.margin * sample_rate)
        return max(round(self.seconds * sample_rate), 3 * fade + 2 * margin), fade, margin

    def bounds(self, length: int, sample_rate: int) -> list[tuple[int, int]]:
        """``[(start, stop), ...]`` of the segments of a ``length``-sample recording; consecutive
        ones overlap by ``crossfade + 2 margin`` samples."""
        segment, fade, margin = self.samples(sample_rate)
        if length <= segment:
            return [(0, length)]
        overlap = fade + 2 * margin
        n = -(-(length - overlap) // (segment - overlap))
        starts = [k * (length - overlap) // n for k in range(n)]   # strides >= fade: the fades never meet
        return [(a, b + overlap) for a, b in zip(starts, starts[1:])] + [(starts[-1], length)]


def crossfade_weights(n: int) -> np.ndarray:
    """Raised-cosine weights ``(n,)`` float32 rising from ~0 to ~1 (the later segment's; the
    earlier one gets ``1 - w``, so the two always sum to 1)."""
    return (np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2).astype(np.float32)


def resampled_length(length: int, orig: int, new: int) -> int:
    """Samples ``torchaudio.functional.resample`` returns for ``length`` at ``orig`` -> ``new`` Hz
    (its own float32 ceiling, mirrored so chunk counts match the run)."""
    if orig == new:
        return length
    g = math.gcd(orig, new)
    return int(torch.ceil(torch.as_tensor(new // g * length / (orig // g))))


def scan_levels(blocks: Iterable[np.ndarray], sample_rate: int, name: str = "input") -> tuple[int, np.ndarray]:
    """The first pass over a recording given as consecutive ``(C, n)`` blocks: ``(length,
    per-channel peaks (C,) float32 at the input rate)``. Raises :class:`InputError` (naming
    ``name``) for an invalid rate, or audio that is empty, non-finite, too short or silent, in
    that order of precedence (:func:`check_waveform`). Holds one block at a time."""
    if sample_rate <= 0:
        raise InputError(f"{name}: invalid sample rate {sample_rate}")
    length, peaks = 0, None
    for block in blocks:
        if not np.all(np.isfinite(block)):
            raise InputError(f"{name}: audio contains NaN or infinite samples")
        if block.shape[-1]:
            top = np.abs(block).max(axis=-1)
            peaks = top if peaks is None else np.maximum(peaks, top)
        length += block.shape[-1]
    if length == 0 or peaks is None or peaks.size == 0:
        raise InputError(f"{name}: empty audio (no samples)")
    if length < MIN_SECONDS * sample_rate:
        raise InputError(f"{name}: too short ({length / sample_rate:.3f} s; need at least {MIN_SECONDS} s)")
    if peaks.max() < SILENT_PEAK:
        raise InputError(f"{name}: audio is silent (peak below 1e-5)")
    return length, peaks


def check_waveform(wave: np.ndarray, sample_rate: int, name: str = "input") -> None:
    """Raise :class:`InputError` for empty, non-finite, too short or silent audio ``(L,)`` or ``(C, L)``."""
    wave = np.asarray(wave)
    scan_levels([wave.reshape(-1, wave.shape[-1]) if wave.ndim > 1 else wave[None]], sample_rate, name)


class UserWaveform:
    """A user's waveform (the :mod:`audio.waveform` contract) read as float32 ``(C, n)`` spans,
    each converted on its own: nothing of the size of the whole input is allocated."""

    def __init__(self, waveform, channels_first: Optional[bool] = None):
        shaped = isinstance(waveform, (np.ndarray, torch.Tensor)) and waveform.ndim in (1, 2)
        if not shaped or (waveform.ndim == 2 and channels_first is None and waveform.shape[0] > waveform.shape[1]):
            waveform_from_user(waveform, channels_first)   # raises the contract's message before converting
        self.waveform = waveform
        self.layout = None if waveform.ndim == 1 else channels_first is not False
        time_axis = 0 if self.layout is False else -1
        self.length = int(waveform.shape[time_axis])
        self.channels = 1 if waveform.ndim == 1 else int(waveform.shape[1 + time_axis])
        self.kind = waveform_from_user(self._span(0, 1), self.layout)[1] if self.length else None

    def _span(self, start: int, stop: int):
        return self.waveform[start:stop] if self.layout is False else self.waveform[..., start:stop]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` as float32 ``(C, n)``."""
        return waveform_from_user(self._span(start, stop), self.layout)[0].numpy()

    def blocks(self, size: int) -> Iterator[np.ndarray]:
        """The whole waveform in consecutive spans of ``size`` samples (the first pass)."""
        for start in range(0, self.length, size):
            yield self.read(start, min(start + size, self.length))


class UserOutput:
    """The result in the user's kind, dtype, layout and device (:func:`waveform_to_user`),
    allocated once and filled block by block by :meth:`write`."""

    def __init__(self, kind, channels: int, length: int):
        shape = (length,) if kind.ndim == 1 else (channels, length) if kind.channels_first else (length, channels)
        self.kind, self.filled = kind, 0
        self.data = (torch.empty(shape, dtype=kind.dtype, device=kind.device) if kind.torch
                     else np.empty(shape, dtype=kind.dtype))

    def write(self, block: np.ndarray) -> None:
        n, part = block.shape[-1], waveform_to_user(torch.from_numpy(block), self.kind)
        if self.kind.ndim == 1 or self.kind.channels_first:
            self.data[..., self.filled:self.filled + n] = part
        else:
            self.data[self.filled:self.filled + n] = part
        self.filled += n


class SpeechEnhancer(Pipeline):
    """Speech denoising and dereverberation with the shipped (or given) models.

    Example::

        from audio import SpeechEnhancer
        enhancer = SpeechEnhancer.from_pretrained()
        clean = enhancer(noisy, 44100)                       # numpy or torch, (L,) or (C, L), float or int PCM
        clean = enhancer(data, rate, channels_first=False)   # soundfile's (L, C)
        dry = enhancer(noisy, 44100, task="dereverb", method="storm", steps=2)
    """

    segment_setting = SegmentSetting()   # how long recordings are cut; set on an instance to cut them otherwise

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
            settings = self.extras["consistency"]["consistency"]
            top = settings["num_intervals"] - settings.get("sampler_stop", 0)
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
        return sample_consistency(f, model.process, y, num_inference_steps=steps, grid=grid,
                                  stop=settings.get("sampler_stop", 0), generator=generator)   # 0: older exports

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
                        generator: Optional[torch.Generator] = None,
                        peak: Optional[float] = None) -> tuple[torch.Tensor, int]:
        """Enhance one 16 kHz channel ``(L,)``; returns ``(enhanced (L,), network evaluations)``.
        The model sees ``wave / peak`` and the result is scaled back by ``peak``: by default the
        channel's own peak; :meth:`enhance_stream` gives a segment its whole recording's.
        Randomness comes from ``generator``, or a fresh one seeded with ``seed``."""
        length = wave.shape[-1]
        padded = torch.zeros(self.stft.length_for_frames(self._frames(length)), device=self.device)
        padded[:length] = wave.to(self.device, torch.float32)
        if peak is None:
            peak = padded.abs().max()
        peak = torch.as_tensor(peak, dtype=torch.float32, device=self.device).clamp_min(1e-8)
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
        out = tiled_apply(run, spec, self._chunk(spec.shape[-1], chunk_frames, overlap), overlap, progress=on_chunk)
        return self.stft.inverse(out[0], padded.shape[-1])[:length] * peak, nfe

    def _chunk(self, frames: int, chunk_frames: Optional[int], overlap: int) -> Optional[int]:
        """The chunk side :meth:`enhance_channel` tiles ``frames`` with (``None``: one piece). Chunks
        are square: never below the bin count, so frequency is never split."""
        if not chunk_frames:
            return None
        return max(self.stft.bins, balanced_tile(frames, chunk_frames, overlap, self.frame_multiple))

    def _channel_chunks(self, samples16: int, chunk_frames: Optional[int], overlap: int) -> int:
        """Chunks :meth:`enhance_channel` runs on ``samples16`` samples at 16 kHz."""
        frames = self._frames(samples16)
        return count_tiles(self.stft.bins, frames, self._chunk(frames, chunk_frames, overlap), overlap)

    def num_chunks(self, samples: int, sample_rate: int, chunk_frames: Optional[int] = CHUNK_FRAMES,
                   overlap: int = CHUNK_OVERLAP) -> int:
        """Chunks per channel, all segments together, for a recording of ``samples`` at
        ``sample_rate``: the number of ``on_chunk`` calls per channel."""
        return sum(self._channel_chunks(resampled_length(b - a, sample_rate, SAMPLE_RATE), chunk_frames, overlap)
                   for a, b in self.segment_setting.bounds(samples, sample_rate))

    def _frames(self, samples: int) -> int:
        """STFT frames of ``samples`` at 16 kHz, rounded up to the backbone's multiple."""
        return -(-self.stft.frames_to_cover(samples) // self.frame_multiple) * self.frame_multiple

    @staticmethod
    def _generators(channels: int, seed: Optional[int], generator: Optional[torch.Generator]) -> list:
        """One generator per channel: ``generator`` shared, a fresh seeded one per channel (kept
        across segments), or with ``seed=None`` one shared unseeded one."""
        if generator is None and seed is None:
            generator = torch.Generator()
            generator.seed()
        if generator is not None:
            return [generator] * channels
        return [torch.Generator(device="cpu").manual_seed(seed) for _ in range(channels)]

    def _enhance_segment(self, block: np.ndarray, sample_rate: int, peaks: Optional[np.ndarray], generators: list,
                         enhance: Callable, skip: Callable[[int], None]) -> tuple[np.ndarray, int]:
        """Enhance ``block (C, n)`` at ``sample_rate`` channel by channel through 16 kHz; returns
        ``(enhanced (C, n) float32, network evaluations)``. ``enhance`` is :meth:`enhance_channel`
        with the run's settings; a silent channel stays silent, ``skip(samples16)`` counting its chunks.

        ``peaks=None`` (a one-segment recording): each channel is normalised by, and found silent
        from, its own 16 kHz peak, as before segments existed; else by ``peaks`` (the recording's)."""
        import torchaudio.functional as AF

        outputs, nfe = [], 0
        for c, channel in enumerate(torch.from_numpy(block)):
            wave16 = AF.resample(channel, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else channel
            peak = None if peaks is None else float(peaks[c])
            if (wave16.abs().max() if peak is None else peak) < SILENT_PEAK:   # a silent channel stays silent
                out16 = torch.zeros_like(wave16)
                skip(wave16.shape[-1])
            else:
                out16, evaluations = enhance(wave16, generator=generators[c], peak=peak)
                nfe += evaluations
            out = AF.resample(out16.cpu(), SAMPLE_RATE, sample_rate) if sample_rate != SAMPLE_RATE else out16.cpu()
            n = channel.shape[-1]
            outputs.append(torch.nn.functional.pad(out, (0, max(0, n - out.shape[-1])))[:n])
        return torch.stack(outputs).numpy(), nfe

    def _join_segments(self, read: Reader, bounds: list[tuple[int, int]], sample_rate: int, write: Writer,
                       enhance: Callable[[np.ndarray], np.ndarray]) -> None:
        """Enhance the segments ``bounds`` in order with ``enhance(block) -> out`` and write the
        recording: each segment's part between the joins, and a crossfade at each join. Every
        sample is read once (the overlap is kept from the previous segment); holds one segment's
        input and output and one crossfade's worth of the previous output."""
        _, fade, margin = self.segment_setting.samples(sample_rate)
        weights = crossfade_weights(fade)
        block = held = None
        for k, (a, b) in enumerate(bounds):
            if block is None:
                block = read(a, b)
            else:
                prev_a, prev_b = bounds[k - 1]
                block = np.concatenate([block[:, a - prev_a:], read(prev_b, b)], axis=1)
            out = enhance(block)
            release_freed_memory()
            first = 0
            if held is not None:   # the earlier segment fades out as this one fades in
                write(held * (1 - weights) + out[:, margin:margin + fade] * weights)
                first = margin + fade
            last = out.shape[-1] if k == len(bounds) - 1 else out.shape[-1] - margin - fade
            write(out[:, first:last])
            held = out[:, last:last + fade].copy() if k < len(bounds) - 1 else None

    def enhance_stream(self, read: Reader, length: int, sample_rate: int, write: Writer, peaks: np.ndarray,
                       task: str = "denoise", method: str = DEFAULT_METHOD, steps: Optional[int] = None,
                       seed: Optional[int] = 0, chunk_frames: Optional[int] = CHUNK_FRAMES,
                       overlap: int = CHUNK_OVERLAP, on_chunk: Optional[Callable[[], None]] = None,
                       generator: Optional[torch.Generator] = None) -> RunInfo:
        """Enhance a ``length``-sample recording at ``sample_rate`` (Hz) without holding it: the
        spans ``read(start, stop) -> (C, n) float32`` are asked for in order, each sample once, and
        the result goes to ``write(block (C, n) float32)`` in order, ``length`` samples in all.
        Returns the run's :class:`RunInfo` (also kept in ``last_run``).

        ``peaks (C,)`` are the recording's per-channel peaks at the input rate, from a first pass
        (:func:`scan_levels`, which also rejects unusable audio). Beyond one segment every segment
        is normalised by them, not by its own peak, so the level cannot jump at a join. The input
        rate's peak rather than the 16 kHz one: the first pass gets it exactly, for free, from the
        samples it reads anyway (the 16 kHz peak would mean resampling the recording twice, and its
        value would depend on where the segments fall); at 16 kHz, the models' rate, the two are
        the same, and elsewhere they differ only by what resampling does to the peak sample, a gain
        the model's input level moves by and the output is scaled back by. A recording that fits in
        one segment is enhanced exactly as before segments existed (its own 16 kHz peak).

        Memory: one segment (:attr:`segment_setting`) of input and of output at the input rate,
        one crossfade of the previous output, and one segment's 16 kHz work (its spectrogram and
        chunk accumulators, ~3 MB per second of segment), whatever ``length``.

        The other arguments are :meth:`__call__`'s; ``on_chunk`` is called :meth:`num_chunks`
        times per channel (a silent channel's chunks count as done at once)."""
        start = time.perf_counter()
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        steps = self.check_method(method, steps)
        generators = self._generators(len(peaks), seed, generator)
        enhance = functools.partial(self.enhance_channel, task=task, method=method, steps=steps,
                                    chunk_frames=chunk_frames, overlap=overlap, on_chunk=on_chunk)

        def skip(samples16: int) -> None:
            for _ in range(self._channel_chunks(samples16, chunk_frames, overlap) if on_chunk else 0):
                on_chunk()

        nfe = 0
        bounds = self.segment_setting.bounds(length, sample_rate)
        levels = None if len(bounds) == 1 else peaks   # one segment: its own 16 kHz peaks, as before segments

        def segment(block: np.ndarray) -> np.ndarray:
            nonlocal nfe
            out, evaluations = self._enhance_segment(block, sample_rate, levels, generators, enhance, skip)
            nfe += evaluations
            return out

        self._join_segments(read, bounds, sample_rate, write, segment)
        self.last_run = RunInfo(nfe, self.num_chunks(length, sample_rate, chunk_frames, overlap),
                                time.perf_counter() - start, len(peaks), method)
        return self.last_run

    def __call__(self, waveform, sample_rate: int, task: str = "denoise", method: str = DEFAULT_METHOD,
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
        with the run's :class:`~shared.pipeline.RunInfo` (also kept in ``last_run``).

        Runs :meth:`enhance_stream` over the waveform, converted one segment at a time, into the
        output allocated in the user's dtype: beyond the output, memory is one segment's."""
        start = time.perf_counter()
        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if num_inference_steps is not None and steps is not None and num_inference_steps != steps:
            raise InputError("give num_inference_steps or steps, not both")
        steps = self.check_method(method, num_inference_steps if num_inference_steps is not None else steps)
        sample_rate = sample_rate_of(sample_rate)
        source = UserWaveform(waveform, channels_first)
        block = self.segment_setting.samples(sample_rate)[0]
        length, peaks = scan_levels(source.blocks(block), sample_rate)
        result = UserOutput(source.kind, source.channels, length)
        run = self.enhance_stream(source.read, length, sample_rate, result.write, peaks, task, method, steps, seed,
                                  chunk_frames, overlap, on_chunk, generator)
        self.last_run = dataclasses.replace(run, seconds=time.perf_counter() - start)
        return PipelineOutput(result.data, self.last_run) if return_dict else result.data

"""Training and validation pairs for speech enhancement, generated on the fly from real tools.

A pair is (clean, degraded) speech at 16 kHz for one of two tasks. The clean speech is the split's
synthesised voices, and with ``recorded_voices`` a fraction of its recorded human voices (:mod:`audio.corpus`).

* ``denoise``: clean + noise at an SNR drawn from [-5, 20] dB; the noise is coloured (violet to
  brown), babble (2-6 other voices of the same split) or a recorded sound.
* ``dereverb``: clean convolved with a room impulse response (T60 0.2-1.0 s), plus faint noise
  (30-50 dB SNR); the target is the dry, time-aligned clean speech.

Both signals are divided by the degraded input's peak and turned into compressed spectrograms
(:mod:`audio.spectral`). Batches are dicts ``x0`` (clean), ``y`` (degraded), ``cond`` (a constant
task plane on the backbone grid: 0 denoise, 1 dereverb), the shape :mod:`shared.training` expects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .corpus import SpeechCorpus, build_corpus, build_recorded_corpus, default_cache_dir, load_corpus
from .noise import coloured_noise, loop_to, mix_at_snr, recorded_noises, reverberate, room_impulse_response
from .options import TASKS
from .spectral import SAMPLE_RATE, CompressedSTFT, peak_normalise, task_plane


def rir_bank(split: str, count: int, cache_dir: Optional[Path] = None, seed: int = 0) -> list[np.ndarray]:
    """``count`` room impulse responses with T60 ~ U(0.2, 1.0) s, cached as an npz."""
    from tqdm import tqdm

    path = (cache_dir or default_cache_dir()) / f"rirs_{split}_{count}_{seed}.npz"
    if not path.exists():
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        rirs = [room_impulse_response(float(rng.uniform(0.2, 1.0)), rng, max_length=16000)
                for _ in tqdm(range(count), desc=f"simulating {split} rooms")]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, *rirs)
        os.replace(tmp, path)
    with np.load(path) as z:
        return [z[k] for k in sorted(z.files, key=lambda k: int(k.split("_")[1]))]


@dataclass
class Degrader:
    """Makes degraded copies of clean speech from a split's noises and rooms."""

    corpus: SpeechCorpus
    noises: list[np.ndarray]
    rirs: list[np.ndarray]
    recorded: Optional[SpeechCorpus] = None     # recorded human voices, drawn with ``recorded_fraction``
    recorded_fraction: float = 0.0
    speed_range: float = 0.0                    # recorded voices play at a speed drawn from 1 ± this
    recorded_noise: float = 0.4                 # the share of recorded sounds among the noises

    def utterance(self, rng: np.random.Generator) -> np.ndarray:
        """A random clean utterance: recorded with probability ``recorded_fraction``, else synthesised.
        A recorded one is played at a speed drawn from ``[1 - speed_range, 1 + speed_range]``
        (:func:`change_speed`): new pitches and vocal-tract lengths from the same few dozen speakers."""
        if self.recorded is not None and rng.uniform() < self.recorded_fraction:
            clip = self.recorded[int(rng.integers(len(self.recorded)))]
            if self.speed_range > 0:
                clip = change_speed(clip, float(rng.uniform(1 - self.speed_range, 1 + self.speed_range)))
            return clip
        return self.corpus[int(rng.integers(len(self.corpus)))]

    def noise(self, n: int, rng: np.random.Generator, recorded_only: bool = False) -> np.ndarray:
        """``n`` samples of noise: a recorded sound (a share ``recorded_noise``, 40 % by default; always with
        ``recorded_only``), else coloured or babble, equally likely."""
        if recorded_only and not self.noises:
            raise FileNotFoundError("no recorded noises installed (make data)")
        other = (1.0 - self.recorded_noise) / 2
        kind = "recorded" if recorded_only else rng.choice(["coloured", "babble", "recorded"],
                                                           p=[other, other, self.recorded_noise])
        if kind == "coloured" or not self.noises:
            return coloured_noise(n, float(rng.uniform(-2, 2)), rng)
        if kind == "babble":
            talkers = [loop_to(self.utterance(rng), n, rng)
                       for _ in range(int(rng.integers(2, 7)))]
            return np.sum(talkers, axis=0)
        return loop_to(self.noises[int(rng.integers(len(self.noises)))], n, rng)

    def degrade(self, clean: np.ndarray, task: str, rng: np.random.Generator,
                snr_db: Optional[float] = None, recorded_only: bool = False) -> np.ndarray:
        if task == "denoise":
            snr = float(rng.uniform(-5, 20)) if snr_db is None else snr_db
            return mix_at_snr(clean, self.noise(len(clean), rng, recorded_only), snr)
        return self.reverberant(clean, self.rirs[int(rng.integers(len(self.rirs)))], rng, snr_db)

    def reverberant(self, clean: np.ndarray, rir: np.ndarray, rng: np.random.Generator,
                    snr_db: Optional[float] = None) -> np.ndarray:
        """``clean`` in the room ``rir``, plus faint coloured noise (SNR drawn from 30-50 dB unless given)."""
        wet = reverberate(clean, rir)
        snr = float(rng.uniform(30, 50)) if snr_db is None else snr_db
        return mix_at_snr(wet, coloured_noise(len(clean), float(rng.uniform(-1, 1)), rng), snr)


def change_speed(clip: np.ndarray, speed: float, denominator: int = 40) -> np.ndarray:
    """``clip`` played ``speed`` times faster (Ko et al. 2015's speed perturbation): resampled by the rational
    ``down / up`` nearest to ``speed`` (``up = denominator``) with scipy's polyphase filter, so pitch, formants
    and tempo all scale by ``speed`` and nothing aliases. The result has ``ceil(len(clip) / speed)`` samples."""
    from scipy.signal import resample_poly

    down = int(round(speed * denominator))
    if down == denominator:
        return clip
    return resample_poly(clip, denominator, down).astype(np.float32)


def crop(clip: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample window of ``clip``; shorter clips are placed at random in silence."""
    if len(clip) >= n:
        start = int(rng.integers(0, len(clip) - n + 1))
        return clip[start:start + n]
    out = np.zeros(n, dtype=np.float32)
    start = int(rng.integers(0, n - len(clip) + 1))
    out[start:start + len(clip)] = clip
    return out


class SpeechPairs(Dataset):
    """Random (clean, degraded) spectrogram pairs; item ``i`` is reproducible from ``(seed, i)``.

    Args:
        degrader: the split's corpus, noises and rooms.
        frames: STFT frames per example (``(frames - 1) * 128`` samples).
        length: items per epoch.
        unshuffle: the backbone's space-to-depth factor (sets the task plane's grid).
        tasks: which tasks to draw from.
    """

    def __init__(self, degrader: Degrader, frames: int = 192, length: int = 10000, unshuffle: int = 2,
                 tasks: tuple[str, ...] = TASKS, seed: int = 0):
        self.degrader, self.frames, self.length = degrader, frames, length
        self.unshuffle, self.tasks, self.seed = unshuffle, tasks, seed
        self.stft = CompressedSTFT()
        self.samples = self.stft.length_for_frames(frames)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        clean = crop(self.degrader.utterance(rng), self.samples, rng)
        clean = clean * float(rng.uniform(0.1, 1.0))
        task = self.tasks[int(rng.integers(len(self.tasks)))]
        noisy = self.degrader.degrade(clean, task, rng)
        y, x0, _ = peak_normalise(torch.from_numpy(noisy), torch.from_numpy(clean))
        u = self.unshuffle
        return {"x0": self.stft(x0), "y": self.stft(y),
                "cond": task_plane(task, (self.stft.bins // u, self.frames // u))}


def load_degrader(split: str, utterances: int, rooms: int, cache_dir: Optional[Path] = None,
                  recorded_voices: float = 0.0, recorded_speakers: Optional[Sequence[str]] = None,
                  speed_range: float = 0.0, recorded_noise: float = 0.4) -> Degrader:
    """Build (once) and load a split's synthesised corpus, recorded noises and rooms, and its recorded
    voices (of ``recorded_speakers`` only, ``fnmatch`` patterns; ``None``: all) when a fraction
    ``recorded_voices`` > 0 of the utterances is to come from them, played at speeds within 1 ± ``speed_range``;
    a share ``recorded_noise`` of the noises are recorded sounds."""
    if not 0.0 <= recorded_noise <= 1.0:
        raise ValueError(f"recorded_noise must be in [0, 1], got {recorded_noise}")
    corpus = load_corpus(build_corpus(split, utterances, cache_dir))
    recorded = None
    if recorded_voices > 0:
        recorded = load_corpus(build_recorded_corpus(split, cache_dir, speakers=recorded_speakers))
    return Degrader(corpus, recorded_noises(split), rir_bank(split, rooms, cache_dir), recorded, recorded_voices,
                    speed_range, recorded_noise)


class SpeechEnhancementData(pl.LightningDataModule):
    """Lightning data module over :class:`SpeechPairs` (train and validation by voice and text)."""

    def __init__(self, frames: int = 192, batch_size: int = 8, train_utterances: int = 4000,
                 val_utterances: int = 300, train_rooms: int = 300, val_rooms: int = 40,
                 epoch_length: int = 8000, val_items: int = 32, unshuffle: int = 2, num_workers: int = 0,
                 cache_dir: Optional[str] = None, recorded_voices: float = 0.0,
                 recorded_speakers: Optional[list[str]] = None, speed_range: float = 0.0,
                 recorded_noise: float = 0.4, tasks: tuple[str, ...] = TASKS, seed: int = 0):
        """``seed``: the training pairs' seed (item ``i`` of epoch ``e`` is drawn from ``(seed, e, i)``); a
        fine-tuning stage that sets a new one sees fresh pairs instead of replaying the previous stage's first
        epochs. ``recorded_voices``: the fraction of utterances drawn from each split's recorded human voices
        (:mod:`audio.corpus`) instead of its synthesised ones; ``recorded_speakers``: the training speakers
        to draw from (``fnmatch`` patterns of :data:`audio.corpus.RECORDED_VOICES`' names; ``None``: all of
        them). ``speed_range``: training recordings play at a speed drawn from ``1 ± speed_range``
        (:func:`change_speed`; validation never). ``recorded_noise``: the share of recorded sounds among the
        training noises (the rest coloured or babble, equally; validation keeps 40 %). ``tasks``: the training
        pairs' task is drawn uniformly from this list (repeat one to weight it: ``[denoise, dereverb, dereverb]``
        makes two thirds dereverberation; validation keeps both equally). Validation always draws from every
        validation speaker."""
        unknown = sorted(set(tasks) - set(TASKS))
        if unknown or not tasks:
            raise ValueError(f"tasks must be a non-empty list of {', '.join(TASKS)}; got {list(tasks)}")
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: Optional[str] = None) -> None:
        h = self.hparams
        cache = Path(h.cache_dir) if h.cache_dir else None
        self.train_set = SpeechPairs(load_degrader("train", h.train_utterances, h.train_rooms, cache,
                                                   h.recorded_voices, h.recorded_speakers, h.speed_range,
                                                   h.recorded_noise),
                                     h.frames, h.epoch_length, h.unshuffle, tuple(h.tasks), seed=h.seed)
        self.val_set = SpeechPairs(load_degrader("validation", h.val_utterances, h.val_rooms, cache, h.recorded_voices),
                                   h.frames, h.val_items, h.unshuffle, seed=1)

    def train_dataloader(self) -> DataLoader:
        self.train_set.epoch = self.trainer.current_epoch if self.trainer else 0
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True,
                          num_workers=self.hparams.num_workers, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.batch_size, num_workers=0)


CONDITIONS = {"snr0": ("denoise", 0.0), "snr5": ("denoise", 5.0), "snr10": ("denoise", 10.0),
              "reverb": ("dereverb", None), "natural": ("denoise", None)}
NATURAL_SNR = (0.0, 10.0)      # the natural condition's input SNR range (dB)
NATURAL_MIN_SECONDS = 2.0      # its prompts are at least this long


def validation_clips(count: int = 8, conditions: tuple[str, ...] = tuple(CONDITIONS), utterances: int = 300,
                     rooms: int = 40, seed: int = 2024, cache_dir: Optional[Path] = None) -> list[dict]:
    """Fixed held-out test clips: ``count`` validation utterances (unseen voices and texts) under each
    condition: input SNR 0, 5, 10 dB with validation noises (recorded, babble, coloured) and reverberant
    speech in validation rooms, on synthesised voices; and ``natural``, the held-out recorded human voice
    (:data:`audio.corpus.VALIDATION_RECORDED`, prompts of at least 2 s) in recorded validation noise only, at
    an SNR drawn from 0-10 dB.

    Each item: ``name``, ``condition``, ``task``, ``clean`` and ``noisy`` (float32, 16 kHz, whole
    utterances), seeded so every run and every method sees the same inputs.
    """
    degrader = load_degrader("validation", utterances, rooms, cache_dir)
    items = []
    for cond in conditions:
        rng = np.random.default_rng([seed, list(CONDITIONS).index(cond)])
        if cond == "natural":
            items += natural_clips(degrader, count, rng, cache_dir)
            continue
        task, snr = CONDITIONS[cond]
        for k in range(count):
            index = int(rng.integers(len(degrader.corpus)))
            clean = degrader.corpus[index] * 0.5
            noisy = degrader.degrade(clean, task, rng, snr_db=snr)
            items.append({"name": f"{cond}_{k}_{index}", "condition": cond, "task": task, "clean": clean,
                          "noisy": noisy.astype(np.float32)})
    return items


def natural_clips(degrader: Degrader, count: int, rng: np.random.Generator,
                  cache_dir: Optional[Path] = None) -> list[dict]:
    """The ``natural`` condition of :func:`validation_clips`: ``count`` distinct prompts (at least
    :data:`NATURAL_MIN_SECONDS`) of the held-out recorded voice, each in one of ``degrader``'s recorded noises
    at an SNR drawn from :data:`NATURAL_SNR`."""
    corpus = load_corpus(build_recorded_corpus("validation", cache_dir))
    long_enough = np.flatnonzero(np.diff(corpus.offsets) >= NATURAL_MIN_SECONDS * SAMPLE_RATE)
    items = []
    for k, index in enumerate(rng.choice(long_enough, size=min(count, len(long_enough)), replace=False)):
        clean = corpus[int(index)] * 0.5
        noisy = degrader.degrade(clean, "denoise", rng, snr_db=float(rng.uniform(*NATURAL_SNR)), recorded_only=True)
        items.append({"name": f"natural_{k}_{index}", "condition": "natural", "task": "denoise", "clean": clean,
                      "noisy": noisy.astype(np.float32)})
    return items

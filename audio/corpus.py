"""Offline speech corpora: real text read by Debian's speech synthesisers, and recorded human voices.

* Text: English sentences from the docstrings of the Python standard library (thousands of
  distinct, natural sentences that ship with every Python), split train/validation by a hash of
  the sentence.
* Voices: ``espeak-ng`` (English accents and other languages reading English, times the voice
  variants in ``espeak-ng-data/voices/!v``, random pitch and rate) and ``flite`` (awb, rms, kal16,
  slt). A voice is held out for validation if its variant, its language or its flite name is in
  the validation lists below; training voices avoid all of them, so validation voices are unseen.

:func:`build_corpus` synthesises a split once (about a minute for thousands of utterances) into
``<cache>/speech_<split>.npz``; :func:`load_corpus` reads it back.

Recorded voices (:func:`build_recorded_corpus`), split by speaker:

* the voice prompts of the Asterisk telephony server: studio recordings of four professional speakers in
  five languages (Debian ``asterisk-core-sounds-*-g722``: G.722 wide-band, 16 kHz with content up to 7 kHz,
  about 2,800 prompts of 0.5-15 s). Allison (US English and Mexican Spanish, the most natural English
  voice installed) is held out for validation; June (Canadian French), Carlo (Italian, male) and the
  Russian IVR voice are training voices;
* KLettres' letters and syllables (Debian ``klettres-data``: about 1,800 full-band recordings, one reader
  per language, 20 languages): training voices;
* the spoken dialogues of the game Fish Fillets NG (Debian ``fillets-ng-data``, ``-cs``, ``-nl``: about
  3,700 lines acted by a cast of voice actors in Czech, Dutch and some English, 22 kHz, 3.5 hours):
  training voices;
* KTuberling's spoken words (Debian ``ktuberling-data``: about 1,400 full-band words, one reader per
  language, 23 languages, half an hour): training voices.
"""

from __future__ import annotations

import ast
import fnmatch
import glob
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from .recordings import read_recording
from .spectral import SAMPLE_RATE

ESPEAK_LANGUAGES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                    "en-029", "de", "fr", "es", "it", "nl", "pl", "pt", "sv", "hi", "vi"]
VALIDATION_LANGUAGES = {"en-029", "nl", "hi"}
VALIDATION_VARIANTS = {"f5", "m7", "klatt4", "Andrea", "belinda", "grandpa", "norbert", "Storm", "iven3",
                       "anika", "max", "edward2"}
FLITE_VOICES = ["awb", "rms", "kal16", "slt"]
VALIDATION_FLITE = {"slt"}
SPLITS = ("train", "validation")


def default_cache_dir() -> Path:
    """``$FASTDIFF_CACHE`` or ``~/.cache/fastdiff``: where generated corpora live (never in git)."""
    return Path(os.environ.get("FASTDIFF_CACHE", Path.home() / ".cache" / "fastdiff"))


def split_of(key: str, validation_fraction: float = 0.1) -> str:
    """Deterministic split of a string key by its SHA-1 (stable across machines and runs)."""
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "validation" if h < validation_fraction else "train"


# ----------------------------------------------------------------------------- text
_SENTENCE = re.compile(r"^[A-Z][a-z]+(?: [A-Za-z][a-z']*){3,15}[.]$")


def _docstring_sentences(path: Path) -> Iterator[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="ignore"))
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                for s in re.split(r"(?<=[.])\s+", " ".join(doc.split())):
                    if _SENTENCE.match(s):
                        yield s


def text_corpus(split: str) -> list[str]:
    """Distinct English sentences (4-16 plain words) from the standard library's docstrings."""
    stdlib = Path(os.__file__).parent
    seen: dict[str, None] = {}
    for path in sorted(stdlib.glob("*.py")) + sorted(stdlib.glob("*/*.py")):
        if "test" in path.parts[-2:][0] or path.name.startswith("test"):
            continue
        for s in _docstring_sentences(path):
            seen.setdefault(s, None)
    return [s for s in seen if split_of("text:" + s) == split]


# ----------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: engine, language and variant (espeak-ng) or voice name (flite)."""

    engine: str
    name: str
    variant: str = ""

    @property
    def key(self) -> str:
        return f"{self.engine}:{self.name}+{self.variant}" if self.variant else f"{self.engine}:{self.name}"

    @property
    def split(self) -> str:
        if self.engine == "flite":
            return "validation" if self.name in VALIDATION_FLITE else "train"
        held = self.name in VALIDATION_LANGUAGES or self.variant in VALIDATION_VARIANTS
        return "validation" if held else "train"


def espeak_variants() -> list[str]:
    """Voice variants shipped with espeak-ng (``espeak-ng-data/voices/!v``)."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    return sorted(set(re.findall(r"!v/(\S+)(?=\s{2,}|\s*$)", out, re.M)))


def voice_catalogue(split: str) -> list[Voice]:
    """Every voice of ``split`` (see the module docstring for the held-out rule)."""
    voices = [Voice("flite", v) for v in FLITE_VOICES]
    variants = [""] + espeak_variants()
    voices += [Voice("espeak-ng", lang, var) for lang in ESPEAK_LANGUAGES for var in variants]
    return [v for v in voices if v.split == split]


def synthesize(voice: Voice, text: str, rate: int, pitch: int) -> np.ndarray:
    """Speak ``text`` and return float32 mono samples at 16 kHz (``rate`` wpm, ``pitch`` 0-99;
    flite uses its own rate and pitch)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        if voice.engine == "flite":
            cmd = ["flite", "-voice", voice.name, "-t", text, "-o", str(wav)]
        else:
            v = voice.name + (f"+{voice.variant}" if voice.variant else "")
            cmd = ["espeak-ng", "-v", v, "-s", str(rate), "-p", str(pitch), "-w", str(wav), text]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        return read_recording(wav)


# ----------------------------------------------------------------------------- recorded voices
_ASTERISK = "/usr/share/asterisk/sounds"
KLETTRES_LANGUAGES = ["ar", "cs", "da", "de", "en", "en_GB", "es", "fr", "he", "hu", "it", "lt", "ml", "nb", "nds",
                      "nl", "pt_BR", "ru", "tn", "uk"]
_FILLETS = "/usr/share/games/fillets-ng/sound"       # the game's dialogues, one folder per level and language
FILLETS_LANGUAGES = ["cs", "en", "nl"]
_KTUBERLING = "/usr/share/ktuberling/sounds"
KTUBERLING_LANGUAGES = ["ca", "da", "de", "el", "en", "es", "fi", "fr", "ga", "gl", "it", "lt", "nds", "nl", "nn",
                        "pt", "ro", "ru", "sl", "sr", "sv", "uk", "wa"]    # sr@* are copies of sr
RECORDED_VOICES = {     # speaker (or group of speakers) -> glob patterns of their recordings
    "allison": [f"{_ASTERISK}/en_US_f_Allison/**/*.g722", f"{_ASTERISK}/es_MX_f_Allison/**/*.g722"],
    "june": [f"{_ASTERISK}/fr_CA_f_June/**/*.g722"],
    "carlo": [f"{_ASTERISK}/it_IT_m_Carlo/**/*.g722"],
    "ivrvoice_ru": [f"{_ASTERISK}/ru_RU_f_IvrvoiceRU/**/*.g722"],
} | {f"klettres_{lang}": [f"/usr/share/klettres/{lang}/**/*.ogg"] for lang in KLETTRES_LANGUAGES} | {
    f"fillets_{lang}": [f"{_FILLETS}/**/{lang}/*.ogg"] for lang in FILLETS_LANGUAGES} | {
    f"ktuberling_{lang}": [f"{_KTUBERLING}/{lang}/*.{ext}" for ext in ("ogg", "wav", "opus")]
    for lang in KTUBERLING_LANGUAGES}
VALIDATION_RECORDED = {"allison"}
RECORDED_VOICE_PACKAGES = [f"asterisk-core-sounds-{lang}-g722" for lang in ("en", "es", "fr", "it", "ru")] + [
    "klettres-data", "fillets-ng-data", "fillets-ng-data-cs", "fillets-ng-data-nl", "ktuberling-data"]


def recorded_voice_files(split: str, speakers: Optional[Sequence[str]] = None) -> list[tuple[str, str]]:
    """``(speaker, path)`` of every installed recording of ``split``'s speakers, sorted (none if not installed);
    ``speakers``: only the speakers that match one of these ``fnmatch`` patterns (``None``: all)."""
    out = []
    for speaker, patterns in RECORDED_VOICES.items():
        if (speaker in VALIDATION_RECORDED) != (split == "validation"):
            continue
        if speakers is not None and not any(fnmatch.fnmatchcase(speaker, p) for p in speakers):
            continue
        for pattern in patterns:
            out += [(speaker, f) for f in sorted(glob.glob(pattern, recursive=True))]
    return out


def build_recorded_corpus(split: str, cache_dir: Optional[Path] = None, min_seconds: float = 0.5,
                          progress: bool = True, speakers: Optional[Sequence[str]] = None) -> Path:
    """Decode ``split``'s recordings (at least ``min_seconds`` long; of ``speakers`` only, as in
    :func:`recorded_voice_files`) into an npz like :func:`build_corpus`'s (``voice`` ``recorded:<speaker>``,
    ``text`` the file name). Raises if none is installed."""
    from tqdm import tqdm

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    files = recorded_voice_files(split, speakers)
    if not files:
        raise FileNotFoundError(f"no recorded {split} voices{f' of {list(speakers)}' if speakers else ''}: "
                                f"install {' '.join(RECORDED_VOICE_PACKAGES)} (make data)")
    digest = hashlib.sha1("\n".join(f for _, f in files).encode()).hexdigest()[:8]    # the file list names the cache
    target = (cache_dir or default_cache_dir()) / f"speech_recorded_{split}_{len(files)}_{digest}.npz"
    if target.exists():
        return target
    clips, voices, texts = [], [], []
    for speaker, path in tqdm(files, desc=f"decoding recorded {split} voices", disable=not progress, file=sys.stderr):
        audio = read_recording(path)
        if audio is not None and len(audio) >= min_seconds * SAMPLE_RATE and np.abs(audio).max() > 1e-3:
            clips.append(audio)
            voices.append(f"recorded:{speaker}")
            texts.append(Path(path).stem)
    _write_corpus(target, clips, voices, texts)
    return target


# ----------------------------------------------------------------------------- corpus
def _write_corpus(target: Path, clips: list[np.ndarray], voices: list[str], texts: list[str]) -> None:
    """Peak-normalise each clip to 0.9 and write the npz layout of :class:`SpeechCorpus` atomically."""
    clips = [np.clip(c / max(1e-6, np.abs(c).max()) * 0.9, -1, 1) for c in clips]
    offsets = np.cumsum([0] + [len(c) for c in clips])
    audio = (np.concatenate(clips) * 32767).astype(np.int16)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".npz", delete=False) as f:
        np.savez(f, audio=audio, offsets=offsets, voice=np.array(voices), text=np.array(texts))
    os.replace(f.name, target)


def build_corpus(split: str, count: int, cache_dir: Optional[Path] = None, seed: int = 0,
                 workers: int = 2, progress: bool = True) -> Path:
    """Synthesise ``count`` utterances of ``split`` (random voice, text, rate, pitch) into an npz.

    The file holds ``audio`` (int16, all utterances concatenated), ``offsets`` (count+1),
    ``voice`` and ``text`` (strings per utterance). Written atomically; reused if present.
    """
    from tqdm import tqdm

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    target = (cache_dir or default_cache_dir()) / f"speech_{split}_{count}_{seed}.npz"
    if target.exists():
        return target
    rng = np.random.default_rng(seed)
    voices, texts = voice_catalogue(split), text_corpus(split)
    jobs = [(voices[rng.integers(len(voices))], texts[rng.integers(len(texts))],
             int(rng.integers(120, 200)), int(rng.integers(20, 80))) for _ in range(count)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(lambda j: synthesize(*j), jobs), total=count, disable=not progress,
                            desc=f"synthesising {split} speech", file=sys.stderr))
    _write_corpus(target, results, [j[0].key for j in jobs], [j[1] for j in jobs])
    return target


@dataclass
class SpeechCorpus:
    """Utterances held in memory: ``len(corpus)``, ``corpus[i]`` -> float32 samples at 16 kHz."""

    audio: np.ndarray
    offsets: np.ndarray
    voice: np.ndarray
    text: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.audio[self.offsets[i]:self.offsets[i + 1]].astype(np.float32) / 32767.0



def load_corpus(path: Path) -> SpeechCorpus:
    with np.load(path) as z:
        return SpeechCorpus(z["audio"], z["offsets"], z["voice"], z["text"])

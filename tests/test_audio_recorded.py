"""Recorded human voices (audio.corpus): G.722 decoding, the speaker split, corpus mixing, the natural
condition's clips, and the speech benchmark's target verdicts."""

from __future__ import annotations

import numpy as np
import pytest

from audio import corpus as corpus_mod
from audio.corpus import SpeechCorpus, build_recorded_corpus, load_corpus, recorded_voice_files
from audio.data import Degrader, change_speed
from audio.recordings import read_g722, read_recording

av = pytest.importorskip("av")


def write_g722(path, samples: np.ndarray, rate: int = 16000) -> None:
    """Encode float samples as a raw G.722 file (what the Asterisk packages ship) with PyAV."""
    with av.open(str(path), "w", format="g722") as out:
        stream = out.add_stream("g722", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16)[None], format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture
def prompt_folders(tmp_path, monkeypatch):
    """Two fake speakers' prompt folders (one held out) in place of the Asterisk packages."""
    folders = {"held": tmp_path / "held", "seen": tmp_path / "seen"}
    for name, folder in folders.items():
        (folder / "digits").mkdir(parents=True)
        write_g722(folder / "a.g722", tone(1.0, 300))
        write_g722(folder / "digits" / "b.g722", tone(2.5, 500))
        write_g722(folder / "short.g722", tone(0.2))              # below min_seconds: dropped
    monkeypatch.setattr(corpus_mod, "RECORDED_VOICES", {k: [f"{v}/**/*.g722"] for k, v in folders.items()})
    monkeypatch.setattr(corpus_mod, "VALIDATION_RECORDED", {"held"})
    return folders


def test_read_g722_decodes_a_tone(tmp_path):
    x = tone(1.0, 1000)
    write_g722(tmp_path / "t.g722", x)
    y = read_g722(str(tmp_path / "t.g722"))
    assert y.dtype == np.float32 and abs(len(y) - len(x)) <= 320
    spectrum = np.abs(np.fft.rfft(y[2000:14000]))
    assert abs(np.argmax(spectrum) * 16000 / 12000 - 1000) < 5       # the tone survives the codec
    assert 0.3 < np.abs(y).max() < 0.7


def test_read_recording_resamples_and_skips_other_files(tmp_path):
    import soundfile as sf

    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(44100) / 44100)
    sf.write(tmp_path / "a.wav", np.stack([x, x], axis=1), 44100)                # 1 s of stereo at 44.1 kHz
    y = read_recording(tmp_path / "a.wav")
    assert y.dtype == np.float32 and y.ndim == 1 and abs(len(y) - 16000) <= 1
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.wav").write_bytes(b"RIFF....")
    assert read_recording(tmp_path / "notes.txt") is None and read_recording(tmp_path / "broken.wav") is None
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2)), 22050)        # one such file ships in ktuberling-data
    assert read_recording(tmp_path / "empty.wav") is None


def test_read_recording_decodes_opus(tmp_path):
    import soundfile as sf

    if "OPUS" not in sf.available_subtypes("OGG"):
        pytest.skip("this libsndfile has no Opus")
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)
    sf.write(tmp_path / "w.opus", x, 48000, format="OGG", subtype="OPUS")
    y = read_recording(tmp_path / "w.opus")
    assert y is not None and abs(len(y) - 16000) <= 400
    spectrum = np.abs(np.fft.rfft(y[2000:14000]))
    assert abs(np.argmax(spectrum) * 16000 / 12000 - 440) < 5


def test_recorded_corpus_split_by_speaker(prompt_folders, tmp_path):
    files = {s: recorded_voice_files(s) for s in ("train", "validation")}
    assert {sp for sp, _ in files["validation"]} == {"held"} and {sp for sp, _ in files["train"]} == {"seen"}
    c = load_corpus(build_recorded_corpus("validation", tmp_path / "cache", progress=False))
    assert len(c) == 2 and set(c.voice) == {"recorded:held"} and set(c.text) == {"a", "b"}
    assert abs(np.abs(c[0]).max() - 0.9) < 0.01                           # peak-normalised like the synthetic corpus
    with pytest.raises(ValueError, match="split"):
        build_recorded_corpus("test", tmp_path)


def test_recorded_corpus_of_chosen_speakers(prompt_folders, monkeypatch, tmp_path):
    """A config can name the training speakers it heard (fnmatch patterns); each choice is its own cache."""
    voices = dict(corpus_mod.RECORDED_VOICES)
    monkeypatch.setattr(corpus_mod, "RECORDED_VOICES", voices | {"seen_too": voices["seen"][:1]})
    assert {sp for sp, _ in recorded_voice_files("train", ["seen"])} == {"seen"}
    assert {sp for sp, _ in recorded_voice_files("train", ["seen*"])} == {"seen", "seen_too"}
    assert recorded_voice_files("train", ["nobody"]) == []
    one = build_recorded_corpus("train", tmp_path, progress=False, speakers=["seen_too"])
    both = build_recorded_corpus("train", tmp_path, progress=False)
    assert one != both and set(load_corpus(one).voice) == {"recorded:seen_too"}
    assert set(load_corpus(both).voice) == {"recorded:seen", "recorded:seen_too"}
    with pytest.raises(FileNotFoundError, match="nobody"):
        build_recorded_corpus("train", tmp_path, speakers=["nobody"])


def test_recorded_corpus_missing_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus_mod, "RECORDED_VOICES", {"x": [str(tmp_path / "absent" / "*.g722")]})
    with pytest.raises(FileNotFoundError, match="asterisk-core-sounds"):
        build_recorded_corpus("train", tmp_path)


def corpus_of(*clips: np.ndarray, name: str) -> SpeechCorpus:
    audio = (np.concatenate(clips) * 32767).astype(np.int16)
    offsets = np.cumsum([0] + [len(c) for c in clips])
    return SpeechCorpus(audio, offsets, np.array([name] * len(clips)), np.array([str(i) for i in range(len(clips))]))


def test_degrader_draws_recorded_voices_at_the_fraction():
    synth, recorded = corpus_of(tone(0.5, 300), name="s"), corpus_of(tone(0.5, 700), name="r")
    rng = np.random.default_rng(0)
    d = Degrader(synth, [], [], recorded, 0.3)
    picks = [np.array_equal(d.utterance(rng), recorded[0]) for _ in range(2000)]
    assert abs(np.mean(picks) - 0.3) < 0.04
    only_synth = Degrader(synth, [], [])
    assert all(np.array_equal(only_synth.utterance(rng), synth[0]) for _ in range(20))


def peak_hz(clip: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(clip * np.hanning(len(clip))))
    return float(np.argmax(spectrum)) * 16000 / len(clip)


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_change_speed_scales_pitch_and_length(speed):
    clip = tone(1.0, 440)
    out = change_speed(clip, speed)
    assert out.dtype == np.float32 and abs(len(out) - len(clip) / speed) <= 1
    assert abs(peak_hz(out) - 440 * speed) < 3            # pitch and formants scale with the speed
    assert np.array_equal(change_speed(clip, 1.0), clip)


def test_degrader_speed_perturbs_recorded_voices_only():
    synth, recorded = corpus_of(tone(1.0, 300), name="s"), corpus_of(tone(1.0, 500), name="r")
    d = Degrader(synth, [], [], recorded, 0.5, speed_range=0.1)
    rng = np.random.default_rng(0)
    pitches = {"s": [], "r": []}
    for _ in range(200):
        clip = d.utterance(rng)
        pitch = peak_hz(clip)
        pitches["s" if abs(pitch - 300) < 3 and len(clip) == 16000 else "r"].append(pitch)
    assert len(pitches["s"]) > 60 and len(pitches["r"]) > 60
    assert min(pitches["r"]) >= 450 - 3 and max(pitches["r"]) <= 550 + 3
    assert np.std(pitches["r"]) > 15                     # spread over the range, not one speed


def test_recorded_only_noise():
    noise = np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    d = Degrader(corpus_of(tone(0.5), name="s"), [noise], [])
    rng = np.random.default_rng(0)
    for _ in range(10):                       # every draw is an excerpt of the recording
        n = d.noise(1000, rng, recorded_only=True)
        assert any(np.array_equal(n, noise[i:i + 1000]) for i in range(3001))
    with pytest.raises(FileNotFoundError, match="recorded noises"):
        Degrader(corpus_of(tone(0.5), name="s"), [], []).noise(100, rng, recorded_only=True)


@pytest.mark.parametrize("share", [0.0, 0.4, 0.7, 1.0])
def test_degrader_draws_recorded_noise_at_its_share(share):
    recording = np.full(4000, 0.5, dtype=np.float32)          # a constant: coloured and babble never are
    d = Degrader(corpus_of(tone(0.5), name="s"), [recording], [], recorded_noise=share)
    rng = np.random.default_rng(0)
    picks = [np.all(d.noise(500, rng) == 0.5) for _ in range(1000)]
    assert abs(np.mean(picks) - share) < 0.05


def test_load_degrader_rejects_a_share_outside_0_1(tmp_path):
    from audio.data import load_degrader

    with pytest.raises(ValueError, match="recorded_noise"):
        load_degrader("train", 10, 2, tmp_path, recorded_noise=1.5)


def test_benchmark_targets_on_the_natural_condition():
    from experiments.audio.benchmark_se import ONE_STEP_ROWS, check_targets

    assert ONE_STEP_ROWS == ["predictive", "consistency 1 step"]           # the default's row first
    row = lambda pesq, sdr, rtf=0.1: {"pesq": pesq, "si_sdr": sdr, "rtf": rtf, "estoi": 0.8, "nfe": 1}  # noqa: E731
    summary = {"natural": {"noisy input": row(1.4, 6.0), "DeepFilterNet 3": row(2.1, 11.0, 0.2),
                           "predictive": row(2.0, 12.0, 0.3),
                           "consistency 1 step": row(2.2, 10.0, 0.1), "consistency 2 steps": row(2.3, 10.0),
                           "consistency 4 steps": row(2.1, 10.0)},
               "reverb": {"noisy input": row(1.2, -3.0), "consistency 1 step": row(1.5, 2.5)}}
    t = check_targets(summary)
    assert t["natural: consistency 1 step PESQ >= DeepFilterNet 3's"]["pass"]
    assert not t["natural: consistency 1 step SI-SDR >= DeepFilterNet 3's"]["pass"]
    assert t["natural: consistency 1 step SI-SDR >= DeepFilterNet 3's"]["value"] == pytest.approx(-1.0)
    assert t["natural: consistency 1 step real-time factor <= DeepFilterNet 3's"] == {"value": 0.5, "pass": True}
    assert not t["natural: predictive PESQ >= DeepFilterNet 3's"]["pass"]
    assert t["natural: predictive SI-SDR >= DeepFilterNet 3's"] == {"value": pytest.approx(1.0), "pass": True}
    assert not t["natural: predictive real-time factor <= DeepFilterNet 3's"]["pass"]
    assert t["natural: consistency 2 steps PESQ > 1 step's"]["pass"]
    assert not t["natural: consistency 4 steps PESQ > 1 step's"]["pass"]
    assert t["reverb: consistency 1 step SI-SDR gain >= 5 dB"] == {"value": 5.5, "pass": True}
    assert "reverb: predictive SI-SDR gain >= 5 dB" not in t                 # no reverberant row given
    assert not any("noisy + 8 dB" in k for k in t)                           # no synthetic-voice rows given


def test_make_data_installs_the_audio_packages():
    import re
    from pathlib import Path

    from audio.noise import NOISE_PACKAGES

    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    block = re.search(r"^DATA_PACKAGES :=(.*?)(?<!\\)\n", makefile, re.S | re.M).group(1)
    packages = set(block.replace("\\", " ").split())
    assert set(corpus_mod.RECORDED_VOICE_PACKAGES + NOISE_PACKAGES) <= packages

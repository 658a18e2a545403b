"""Audio vertical: representation, metrics, corpus split, noise and rooms, the enhancer pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audio.corpus import SPLITS, Voice, text_corpus, voice_catalogue
from audio.data import SpeechPairs, task_plane
from audio.enhancer import SpeechEnhancer, check_waveform
from audio.metrics import estoi, pesq_wb, si_sdr
from audio.noise import coloured_noise, mix_at_snr, reverberate, room_impulse_response
from audio.spectral import CompressedSTFT, peak_normalise
from shared.files import InputError


@pytest.mark.parametrize("length", [16000, 12345, 4000])
def test_stft_round_trip(length):
    stft = CompressedSTFT()
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(0)) * 0.3
    spec = stft(x)
    assert spec.shape == (2, 2, 256, stft.frames(length))
    assert float((stft.inverse(spec, length) - x).abs().max()) < 1e-4


def test_stft_compression_formula():
    stft = CompressedSTFT()
    x = torch.randn(8000, generator=torch.Generator().manual_seed(1))
    X = stft.stft(x)
    spec = stft(x)
    mag = torch.sqrt(spec[0] ** 2 + spec[1] ** 2)
    assert torch.allclose(mag, 0.15 * X.abs() ** 0.5, atol=1e-5)
    assert stft.frames(stft.length_for_frames(192)) == 192


@pytest.mark.parametrize("length", [16000, 16001, 83942, 5])
def test_frames_to_cover(length):
    stft = CompressedSTFT()
    frames = stft.frames_to_cover(length)
    assert stft.length_for_frames(frames) >= length > stft.length_for_frames(frames - 1)


def test_peak_normalise():
    y, x, f = peak_normalise(torch.tensor([[0.5, -2.0]]), torch.tensor([[1.0, 1.0]]))
    assert float(y.abs().max()) == 1.0 and torch.allclose(x, torch.tensor([[0.5, 0.5]])) and float(f) == 2.0


def test_si_sdr_known_cases(rng):
    s = rng.standard_normal(16000)
    assert si_sdr(3.0 * s, s) > 100            # scale invariant
    n = rng.standard_normal(16000)
    n -= np.dot(n, s) / np.dot(s, s) * s         # orthogonal noise at exactly 10 dB
    n *= np.sqrt(np.dot(s, s) / np.dot(n, n) / 10)
    assert si_sdr(s + n, s) == pytest.approx(10.0, abs=1e-3)   # mean removal perturbs it slightly


def test_pesq_and_estoi_on_speech(speech_clip, rng):
    clean = speech_clip
    noisy = mix_at_snr(clean, rng.standard_normal(len(clean)).astype(np.float32), 0.0)
    assert pesq_wb(clean, clean) > 4.5
    assert estoi(clean, clean) > 0.99
    assert pesq_wb(noisy, clean) < 2.0
    assert estoi(noisy, clean) < 0.8


def test_mix_at_snr_exact(rng):
    s, n = rng.standard_normal(8000), rng.standard_normal(8000)
    mixed = mix_at_snr(s, n, 5.0)
    assert 10 * np.log10(np.mean(s**2) / np.mean((mixed - s) ** 2)) == pytest.approx(5.0, abs=1e-3)


def test_coloured_noise_slopes(rng):
    """Pink noise loses ~3 dB of power per octave, brown ~6 dB, white none."""
    for exponent, slope in ((0, 0.0), (1, -3.0), (2, -6.0)):
        x = coloured_noise(2**16, exponent, rng)
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x))
        lo = p[(f > 0.01) & (f < 0.02)].mean()
        hi = p[(f > 0.02) & (f < 0.04)].mean()
        assert 10 * np.log10(hi / lo) == pytest.approx(slope, abs=1.0)


def test_room_impulse_response_direct_path(rng):
    rir = room_impulse_response(0.5, rng)
    assert rir[0] == pytest.approx(1.0) and np.abs(rir).max() == pytest.approx(1.0)
    dry = rng.standard_normal(4000).astype(np.float32)
    wet = reverberate(dry, rir)
    assert wet.shape == dry.shape and np.dot(wet, dry) > 0.5 * np.dot(dry, dry)


def test_corpus_splits_are_disjoint_by_voice_and_text():
    voices = {s: {v.key for v in voice_catalogue(s)} for s in SPLITS}
    texts = {s: set(text_corpus(s)) for s in SPLITS}
    assert not voices["train"] & voices["validation"]
    assert not texts["train"] & texts["validation"]
    assert len(voices["train"]) > 500 and len(texts["train"]) > 1000
    assert Voice("flite", "slt").split == "validation"


@pytest.fixture
def tiny_degrader(speech_clip):
    """Two utterances of the test clip, one noise and one room: the smallest :class:`audio.data.Degrader`."""
    from audio.corpus import SpeechCorpus
    from audio.data import Degrader

    audio = (np.tile(speech_clip, 2) * 32767).astype(np.int16)
    corpus = SpeechCorpus(audio, np.array([0, len(speech_clip), len(audio)]), np.array(["a", "b"]), np.array(["x", "y"]))
    return Degrader(corpus, [np.random.default_rng(0).standard_normal(8000).astype(np.float32)],
                    [room_impulse_response(0.4, np.random.default_rng(0))])


def test_training_pairs(tiny_degrader):
    ds = SpeechPairs(tiny_degrader, frames=64, length=4)
    item = ds[0]
    assert item["x0"].shape == item["y"].shape == (2, 256, 64)
    assert item["cond"].shape == (1, 128, 32)
    assert torch.equal(ds[1]["y"], ds[1]["y"])          # reproducible per index
    assert task_plane("dereverb", (2, 2)).unique().tolist() == [1.0]


def test_data_module_seed_draws_fresh_training_pairs(tiny_degrader, monkeypatch):
    """``SpeechEnhancementData(seed=s)``: the training pairs come from ``(s, epoch, i)``, so a fine-tuning stage
    with a new seed does not replay the earlier stages' pairs; validation pairs stay fixed."""
    import audio.data as data

    monkeypatch.setattr(data, "load_degrader", lambda *a, **k: tiny_degrader)
    modules = {}
    for seed in (0, 4):
        modules[seed] = data.SpeechEnhancementData(frames=64, epoch_length=4, val_items=2, seed=seed)
        modules[seed].setup("fit")
    assert modules[4].train_set.seed == 4
    assert not torch.equal(modules[0].train_set[0]["y"], modules[4].train_set[0]["y"])
    assert torch.equal(modules[0].val_set[0]["y"], modules[4].val_set[0]["y"])


def test_data_module_tasks_weight_the_training_tasks(tiny_degrader, monkeypatch):
    """``tasks`` lists the training tasks, drawn uniformly (a repeat weights one); validation keeps both."""
    import audio.data as data

    monkeypatch.setattr(data, "load_degrader", lambda *a, **k: tiny_degrader)
    module = data.SpeechEnhancementData(frames=64, epoch_length=64, val_items=2, tasks=["dereverb"])
    module.setup("fit")
    planes = {float(module.train_set[i]["cond"].mean()) for i in range(8)}
    assert planes == {1.0}                                   # the dereverberation plane only
    assert module.val_set.tasks == data.TASKS
    for bad in ([], ["denoise", "dehum"]):
        with pytest.raises(ValueError, match="tasks"):
            data.SpeechEnhancementData(tasks=bad)


@pytest.mark.parametrize("bad,msg", [
    (np.zeros(0, np.float32), "empty"),
    (np.full(8000, np.nan, np.float32), "NaN"),
    (np.ones(100, np.float32), "too short"),
    (np.zeros(16000, np.float32), "silent"),
])
def test_check_waveform_errors(bad, msg):
    with pytest.raises(InputError, match=msg):
        check_waveform(bad, 16000, "clip.wav")


@pytest.fixture(scope="module")
def enhancer(tiny_audio_weights):
    return SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu")


def test_enhancer_methods_available(enhancer):
    assert enhancer.methods == ["onestep", "storm", "sgmse", "predictive"]
    with pytest.raises(InputError, match="1..30"):
        enhancer.check_method("onestep", 31)
    with pytest.raises(InputError, match="exactly one"):
        enhancer.check_method("predictive", 2)


def test_enhancer_uses_the_models_sampler_stop(tiny_audio_weights, speech_clip, monkeypatch):
    """A consistency model exported with ``sampler_stop`` s samples at ``sampler_times(grid, k, s)`` and takes
    at most ``N - s`` steps; exports without it keep the full grid."""
    import audio.enhancer as enhancer_module

    enhancer = SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu")
    enhancer.extras["consistency"]["consistency"]["sampler_stop"] = 20
    with pytest.raises(InputError, match="1..10"):
        enhancer.check_method("onestep", 11)
    stops = []
    real = enhancer_module.sample_consistency
    monkeypatch.setattr(enhancer_module, "sample_consistency",
                        lambda *a, **k: stops.append(k["stop"]) or real(*a, **k))
    enhancer(speech_clip[:16000], 16000, method="onestep", steps=2)
    del enhancer.extras["consistency"]["consistency"]["sampler_stop"]
    enhancer(speech_clip[:16000], 16000, method="onestep", steps=2)
    assert stops == [20, 0]


@pytest.mark.parametrize("method,steps,nfe", [("onestep", 1, 1), ("onestep", 2, 2), ("predictive", None, 1),
                                              ("storm", 2, 4), ("sgmse", 3, 6)])
def test_enhancer_evaluations(enhancer, speech_clip, method, steps, nfe):
    out = enhancer(speech_clip[:16000], 16000, method=method, steps=steps)
    assert out.shape == (16000,) and out.dtype == np.float32 and np.all(np.isfinite(out))
    assert enhancer.last_run.network_evaluations == nfe


def test_storm_settings(enhancer, speech_clip):
    from audio.enhancer import StormSetting

    clip = speech_clip[:16000]
    ode = enhancer(clip, 16000, method="storm", steps=2)
    try:
        enhancer.storm_setting = StormSetting("pc", t_start=0.5, corrector_steps=1)
        pc = enhancer(clip, 16000, method="storm", steps=2)
        assert enhancer.last_run.network_evaluations == 1 + 2 * 2
    finally:
        enhancer.storm_setting = StormSetting()
    assert np.all(np.isfinite(pc)) and not np.allclose(ode, pc)
    with pytest.raises(ValueError, match="sampler"):
        StormSetting("euler")
    with pytest.raises(ValueError, match="t_start"):
        StormSetting(t_start=0.0)


def test_enhancer_resamples_and_keeps_channels(enhancer, speech_clip):
    import torchaudio.functional as AF

    stereo44 = AF.resample(torch.from_numpy(speech_clip[:24000]), 16000, 44100)
    stereo44 = torch.stack([stereo44, 0.5 * stereo44]).numpy()
    out = enhancer(stereo44, 44100, method="predictive")
    assert out.shape == stereo44.shape
    # the second channel is the first at half level: the peak-normalised model sees the same input
    assert np.allclose(out[1], 0.5 * out[0], atol=1e-4)
    as_torch = enhancer(torch.from_numpy(stereo44[0]), 44100, method="predictive")
    assert isinstance(as_torch, torch.Tensor) and torch.allclose(as_torch, torch.from_numpy(out[0]), atol=1e-5)


@pytest.mark.parametrize("length", [83942, 16000 * 2 - 1])
def test_enhancer_any_length(enhancer, speech_clip, length):
    # 83942 samples: 1 + 83942 // 128 = 656 frames is already a multiple of 16, yet 655 hops miss 102 samples
    clip = np.resize(speech_clip, length)
    out = enhancer(clip, 16000, method="predictive")
    assert out.shape == (length,) and np.all(np.isfinite(out))


def test_enhancer_same_seed_same_output(enhancer, speech_clip):
    a = enhancer(speech_clip[:16000], 16000, method="sgmse", steps=2, seed=5)
    b = enhancer(speech_clip[:16000], 16000, method="sgmse", steps=2, seed=5)
    c = enhancer(speech_clip[:16000], 16000, method="sgmse", steps=2, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_chunked_matches_whole_file(enhancer, speech_clip):
    whole = enhancer(speech_clip, 16000, method="predictive", chunk_frames=None)
    chunked = enhancer(speech_clip, 16000, method="predictive", chunk_frames=128, overlap=48)
    assert enhancer.last_run.tiles > 1
    rel = np.sqrt(np.mean((whole - chunked) ** 2) / np.mean(whole**2))
    assert rel < 0.05


def test_enhancer_rejects_bad_task_and_shape(enhancer, speech_clip):
    with pytest.raises(InputError, match="task"):
        enhancer(speech_clip, 16000, task="declip")
    with pytest.raises(InputError, match="shape"):
        enhancer(speech_clip.reshape(1, 1, -1), 16000)


def test_default_method_is_the_predictive_pass(enhancer, speech_clip):
    """The API's and the command line's default is the one-pass predictive model (audio.options)."""
    from audio.enhance import build_parser

    clip = speech_clip[:16000]
    assert np.array_equal(enhancer(clip, 16000), enhancer(clip, 16000, method="predictive"))
    assert enhancer.last_run.network_evaluations == 1
    assert build_parser().parse_args(["in.wav", "-o", "out.wav"]).method == "predictive"


def test_onestep_uses_the_recorded_noise_level(enhancer, speech_clip):
    """A consistency model exported without ``noise_level`` (older checkpoints) keeps its ``marginal`` boundary."""
    settings = enhancer.extras["consistency"]["consistency"]
    assert "noise_level" not in settings
    clip = speech_clip[:16000]
    try:
        outputs = {}
        for level in (None, "marginal", "effective"):
            if level:
                settings["noise_level"] = level
            outputs[level] = enhancer(clip, 16000, method="onestep", seed=0)
    finally:
        settings.pop("noise_level", None)
    assert np.array_equal(outputs[None], outputs["marginal"])
    assert not np.allclose(outputs["marginal"], outputs["effective"])


def test_enhancer_call_conventions(enhancer, tiny_audio_weights, speech_clip):
    from shared.files import InputError
    from shared.pipeline import PipelineOutput

    clip = speech_clip[:16000]
    out = enhancer(clip, 16000, method="sgmse", num_inference_steps=2, generator=torch.Generator().manual_seed(1),
                   return_dict=True)
    assert isinstance(out, PipelineOutput) and out.run.network_evaluations == 4 and out.run.method == "sgmse"
    again = enhancer(clip, 16000, method="sgmse", steps=2, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(out.output, again)
    with pytest.raises(InputError, match="not both"):
        enhancer(clip, 16000, steps=1, num_inference_steps=2)
    low = SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu", torch_dtype=torch.bfloat16)
    assert low(clip, 16000, method="predictive").dtype == np.float32


def test_reverb_oracle_truncation(rng):
    """``truncate_rir``: keeps the first ``ms`` of the response; at 0 ms only the unit direct path is left, so
    the oracle signal is the dry one; the full response is untouched."""
    from experiments.audio.reverb_oracle import truncate_rir

    rir = room_impulse_response(0.5, rng)
    assert np.count_nonzero(truncate_rir(rir, 10)[161:]) == 0
    np.testing.assert_array_equal(truncate_rir(rir, 10)[:161], rir[:161])
    dry = rng.standard_normal(4000).astype(np.float32)
    np.testing.assert_allclose(reverberate(dry, truncate_rir(rir, 0)), dry, atol=1e-6)
    np.testing.assert_array_equal(truncate_rir(rir, 1e6), rir)


def test_band_gains_closed_form(speech_clip, rng):
    """``band_gains``: the clean speech itself is 0 dB in every band, half its amplitude -6.02 dB, and a
    low-pass at 3 kHz leaves the bands above it far below 0."""
    from scipy.signal import butter, sosfiltfilt

    from experiments.audio.band_gains import BANDS_HZ, band_gains

    clean = speech_clip.astype(np.float64)
    assert band_gains(clean, clean) == pytest.approx([0.0] * len(BANDS_HZ), abs=1e-9)
    assert band_gains(0.5 * clean, clean) == pytest.approx([20 * np.log10(0.5)] * len(BANDS_HZ), abs=1e-9)
    low = sosfiltfilt(butter(8, 3000, fs=16000, output="sos"), clean)
    gains = band_gains(low, clean)
    assert abs(gains[0]) < 0.5 and gains[2] < -10 and max(gains[3:]) < -60      # 3-5 kHz: the filter's skirt

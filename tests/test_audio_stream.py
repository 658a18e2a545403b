"""Streaming speech enhancement (issue 12): segments, crossfaded joins, the whole recording's level,
the file-to-file command line, and its checks and failures. Tiny random-weight models and 2 s
segments keep every multi-segment case to a few seconds of audio."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from audio.audiofile import write_audio_stream
from audio.enhance import main
from audio.enhancer import SegmentSetting, SpeechEnhancer, crossfade_weights, resampled_length, scan_levels
from shared.files import InputError

SHORT = SegmentSetting(seconds=2.0, crossfade=0.25, margin=0.125)   # joins every ~1.5 s


@pytest.fixture(scope="module")
def enhancer(tiny_audio_weights):
    return SpeechEnhancer.from_pretrained(tiny_audio_weights, device="cpu")


@pytest.fixture
def short_segments(monkeypatch):
    """Every enhancer, the command line's included, cuts recordings into :data:`SHORT` segments."""
    monkeypatch.setattr(SpeechEnhancer, "segment_setting", SHORT)


@pytest.fixture(scope="module")
def long_clip(speech_clip):
    """5.4 s of speech at 16 kHz whose second half is 4x quieter (four segments of :data:`SHORT`)."""
    clip = np.concatenate([speech_clip[:43200], 0.25 * speech_clip[:43200]])
    return clip.astype(np.float32)


def joins(setting: SegmentSetting, length: int, rate: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each crossfade of a recording, in samples."""
    _, fade, margin = setting.samples(rate)
    return [(a + margin, a + margin + fade) for a, _ in setting.bounds(length, rate)[1:]]


def resample_rows(x: np.ndarray, orig: int, new: int) -> np.ndarray:
    """soundfile's ``(L, C)`` resampled along L."""
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(x.T)), orig, new).numpy().T


def write_16k(path, data, subtype):
    sf.write(str(path), data, 16000, subtype=subtype)
    return path


# --- layout ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [8000, 16000, 44100])
@pytest.mark.parametrize("seconds", [0.5, 2.0, 2.001, 3.3, 10.0, 61.7])
def test_segment_bounds_cover_the_recording(rate, seconds):
    length = int(seconds * rate)
    segment, fade, margin = SHORT.samples(rate)
    bounds = SHORT.bounds(length, rate)
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(b - a <= segment for a, b in bounds)
    assert (len(bounds) == 1) == (length <= segment)
    for (a0, b0), (a1, b1) in zip(bounds, bounds[1:]):
        assert b0 - a1 == fade + 2 * margin        # the overlap: margin, crossfade, margin
        assert a1 - a0 >= fade and b1 - b0 >= fade   # consecutive crossfades never meet


def test_crossfade_weights_sum_to_one():
    w = crossfade_weights(1000)
    assert w[0] < 1e-5 and w[-1] > 1 - 1e-5 and np.all(np.diff(w) > 0)
    assert np.abs((1 - w) + w - 1).max() < 1e-7


def test_segment_setting_needs_room_for_two_joins():
    with pytest.raises(ValueError, match="cannot hold"):
        SegmentSetting(seconds=1.0, crossfade=0.5, margin=0.25)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 11025])
def test_resampled_length_is_torchaudios(rate):
    import torchaudio.functional as AF

    for length in (1, 999, 44100, 123457):
        assert resampled_length(length, rate, 16000) == AF.resample(torch.zeros(length), rate, 16000).shape[-1]


def test_joining_identity_segments_gives_back_the_input(enhancer, monkeypatch):
    """The crossfade and the bookkeeping alone: with an identity 'enhancement', every sample comes back once."""
    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    x = np.random.default_rng(0).standard_normal((2, 90001)).astype(np.float32)
    reads, blocks = [], []

    def read(start, stop):
        reads.append((start, stop))
        return x[:, start:stop]

    bounds = SHORT.bounds(x.shape[1], 16000)
    enhancer._join_segments(read, bounds, 16000, blocks.append, lambda block: block.copy())
    assert [r[0] for r in reads[1:]] == [r[1] for r in reads[:-1]] and reads[-1][1] == x.shape[1]   # in order, once
    assert np.allclose(np.concatenate(blocks, axis=1), x, rtol=0, atol=1e-6)


# --- the pipeline over several segments -------------------------------------------------------------

def test_multi_segment_is_its_segments_crossfaded(enhancer, long_clip, monkeypatch):
    """Between joins the output is its segment's enhancement (normalised by the recording's peak);
    across a join, the two segments' outputs crossfaded with weights summing to 1."""
    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    out = enhancer(long_clip, 16000, method="predictive")
    peak = float(np.abs(long_clip).max())
    expected, weight = np.zeros(len(long_clip)), np.zeros(len(long_clip))
    _, fade, margin = SHORT.samples(16000)
    bounds = SHORT.bounds(len(long_clip), 16000)
    for k, (a, b) in enumerate(bounds):
        seg, _ = enhancer.enhance_channel(torch.from_numpy(long_clip[a:b]), "denoise", "predictive", 1, peak=peak)
        w = np.ones(b - a)
        if k > 0:
            w[:margin + fade] = np.r_[np.zeros(margin), crossfade_weights(fade)]
        if k < len(bounds) - 1:
            w[-(margin + fade):] = np.r_[1 - crossfade_weights(fade), np.zeros(margin)]
        expected[a:b] += w * seg.numpy()
        weight[a:b] += w
    assert np.allclose(weight, 1, atol=1e-6)
    assert np.allclose(out, expected, rtol=0, atol=1e-6)


def test_multi_segment_level_follows_the_single_segment_result(enhancer, long_clip, monkeypatch):
    single = enhancer(long_clip, 16000, method="predictive")
    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    multi = enhancer(long_clip, 16000, method="predictive")
    assert multi.shape == single.shape and multi.dtype == np.float32 and np.all(np.isfinite(multi))
    near = np.zeros(len(long_clip), bool)
    for a, b in joins(SHORT, len(long_clip), 16000):
        near[a - 4000:b + 4000] = True
        for lo, hi in ((a - 4000, a), (b, b + 4000)):   # no level jump on either side of a join
            ratio = np.sqrt(np.mean(multi[lo:hi] ** 2) / np.mean(single[lo:hi] ** 2))
            assert abs(ratio - 1) < 0.05, (a, ratio)

    def rel(mask):   # the chunks fall elsewhere, so the tiny random models differ a little everywhere
        return np.sqrt(np.mean((multi[mask] - single[mask]) ** 2) / np.mean(single[mask] ** 2))

    assert rel(~near) < 0.05 and rel(near) < 0.1


def test_segments_are_normalised_by_the_whole_recordings_peak(enhancer, long_clip, monkeypatch):
    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    stereo = np.stack([long_clip, 0.3 * long_clip[::-1]])
    peaks = []
    original = SpeechEnhancer.enhance_channel

    def spy(self, wave, *args, peak=None, **kw):
        peaks.append(peak)
        return original(self, wave, *args, peak=peak, **kw)

    monkeypatch.setattr(SpeechEnhancer, "enhance_channel", spy)
    enhancer(stereo, 16000, method="predictive")
    n = len(SHORT.bounds(stereo.shape[1], 16000))
    assert n == 4 and len(peaks) == 2 * n
    assert peaks == [float(np.abs(stereo[0]).max()), float(np.abs(stereo[1]).max())] * n


@pytest.mark.parametrize("rate", [16000, 22050, 44100])
def test_run_info_chunks_and_silent_channels(enhancer, long_clip, monkeypatch, rate):
    import torchaudio.functional as AF

    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    x = AF.resample(torch.from_numpy(long_clip), 16000, rate).numpy()
    stereo = np.stack([x, np.zeros_like(x)])   # the silent channel stays silent
    calls = []
    out = enhancer(stereo, rate, method="storm", steps=1, on_chunk=lambda: calls.append(1), return_dict=True)
    run = out.run
    per_channel = enhancer.num_chunks(stereo.shape[1], rate)
    assert len(SHORT.bounds(stereo.shape[1], rate)) == 4
    assert run.tiles == per_channel >= 4 and len(calls) == 2 * per_channel   # the progress bar's total
    assert run.network_evaluations == 3 * per_channel   # storm, 1 step: 3 evaluations per chunk, 1 channel
    assert (run.channels, run.method) == (2, "storm")
    assert out.output.shape == stereo.shape and np.all(out.output[1] == 0) and np.all(np.isfinite(out.output))


def test_seeded_multi_segment_runs_are_reproducible(enhancer, long_clip, monkeypatch):
    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    a = enhancer(long_clip, 16000, method="sgmse", steps=1, seed=5)
    b = enhancer(long_clip, 16000, method="sgmse", steps=1, seed=5)
    c = enhancer(long_clip, 16000, method="sgmse", steps=1, seed=6)
    g = enhancer(long_clip, 16000, method="sgmse", steps=1, generator=torch.Generator().manual_seed(1))
    h = enhancer(long_clip, 16000, method="sgmse", steps=1, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and np.array_equal(g, h)


def test_multi_segment_keeps_the_users_kind(enhancer, long_clip, monkeypatch):
    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    stereo = np.stack([long_clip, 0.5 * long_clip], axis=1)   # soundfile's (L, C)
    as_float = enhancer(stereo, 16000, method="predictive", channels_first=False)
    pcm = enhancer((stereo * 32767).astype(np.int16), 16000, method="predictive", channels_first=False)
    assert pcm.dtype == np.int16 and pcm.shape == stereo.shape == as_float.shape
    assert np.abs(pcm / 32768 - as_float).max() < 2e-3
    tensor = enhancer(torch.from_numpy(long_clip).to(torch.bfloat16), 16000, method="predictive")
    assert tensor.dtype == torch.bfloat16 and tensor.shape == (len(long_clip),)


def test_api_converts_the_input_one_segment_at_a_time(enhancer, long_clip, monkeypatch):
    """The in-memory call never makes a float copy of the whole input: beyond the output, it holds one segment."""
    import audio.enhancer as module

    monkeypatch.setattr(enhancer, "segment_setting", SHORT)
    converted, original = [], module.waveform_from_user
    monkeypatch.setattr(module, "waveform_from_user", lambda w, *a: converted.append(w.shape[0]) or original(w, *a))
    pcm = (np.stack([long_clip, long_clip], axis=1) * 32767).astype(np.int16)   # (L, C) int16
    out = enhancer(pcm, 16000, method="predictive", channels_first=False)
    assert out.shape == pcm.shape and out.dtype == np.int16
    assert max(converted) <= SHORT.samples(16000)[0] < len(long_clip)


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2)])
def test_one_segment_input_is_the_old_path(enhancer, speech_clip, rate, channels):
    """A recording that fits in one segment is enhanced exactly as before segments existed."""
    import torchaudio.functional as AF

    x = AF.resample(torch.from_numpy(speech_clip), 16000, rate)
    x = torch.stack([x, 0.3 * x.flip(-1)][:channels])
    outputs = []
    for channel in x:   # the pre-streaming __call__, channel by channel
        wave16 = AF.resample(channel, rate, 16000) if rate != 16000 else channel
        out16, _ = enhancer.enhance_channel(wave16, "denoise", "onestep", 2, seed=3)
        out = AF.resample(out16, 16000, rate) if rate != 16000 else out16
        outputs.append(torch.nn.functional.pad(out, (0, max(0, x.shape[-1] - out.shape[-1])))[:x.shape[-1]])
    old = torch.stack(outputs).numpy()
    new = enhancer(x.numpy(), rate, method="onestep", steps=2, seed=3)
    assert np.array_equal(new, old)


# --- the command line streams file to file -----------------------------------------------------------

def cli(src, out, weights, *extra):
    return main([str(src), "-o", str(out), "--weights", str(weights), "--quiet", "--device", "cpu", *extra])


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_cli_gives_the_apis_samples(enhancer, tiny_audio_weights, long_clip, tmp_path, short_segments, ext):
    x = resample_rows(np.stack([long_clip, 0.4 * long_clip[::-1]], axis=1), 16000, 22050)
    src = tmp_path / f"in{ext}"
    sf.write(str(src), x, 22050, subtype="FLOAT" if ext == ".wav" else "PCM_24")
    assert cli(src, tmp_path / f"out{ext}", tiny_audio_weights, "--method", "sgmse", "--steps", "1", "--seed", "4") == 0
    data, _ = sf.read(str(src), dtype="float32", always_2d=True)
    api = enhancer(data, 22050, method="sgmse", steps=1, seed=4, channels_first=False)
    assert len(SHORT.bounds(len(data), 22050)) > 1
    if ext == ".wav":   # float output: the very same samples
        out, _ = sf.read(str(tmp_path / "out.wav"), dtype="float32", always_2d=True)
        assert np.array_equal(out, api)
    else:               # 24-bit output: the same samples, clipped and quantised
        out, _ = sf.read(str(tmp_path / "out.flac"), dtype="float64", always_2d=True)
        assert out.shape == api.shape and np.abs(out - np.clip(api, -1, 32767 / 32768)).max() <= 2**-23


@pytest.mark.parametrize("problem", ["silent", "NaN", "too short"])
def test_cli_checks_streamed_files_before_writing(tiny_audio_weights, long_clip, tmp_path, short_segments,
                                                 monkeypatch, capsys, problem):
    """The whole file is checked in the first pass: a bad sample after the first segment is found
    before anything is enhanced or written."""
    x = {"silent": np.zeros(len(long_clip), np.float32), "too short": long_clip[:2000],
         "NaN": np.concatenate([long_clip, [np.nan]]).astype(np.float32)}[problem]
    src = tmp_path / "in" / "clip.wav"
    src.parent.mkdir()
    sf.write(str(src), x, 16000, subtype="FLOAT")

    def never(*args, **kw):
        raise AssertionError("enhanced a file that the checks should have refused")

    monkeypatch.setattr(SpeechEnhancer, "enhance_channel", never)
    out = tmp_path / "out"
    assert cli(src, out / "clip.wav", tiny_audio_weights) == 1
    line = capsys.readouterr().err.splitlines()[0]
    assert line.startswith(f"error: {src}: ") and problem in line, line
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("failure,code", [(KeyboardInterrupt, 130), (RuntimeError, 1)])
def test_cli_failure_mid_stream_leaves_nothing(tiny_audio_weights, long_clip, tmp_path, short_segments,
                                               monkeypatch, failure, code):
    src = tmp_path / "in.wav"
    sf.write(str(src), long_clip, 16000)
    out = tmp_path / "out"
    original, seen = SpeechEnhancer.enhance_channel, []

    def fail_in_second_segment(self, *args, **kw):
        seen.append(sorted(p.name for p in out.iterdir()))
        if len(seen) == 2:   # the first segment's samples are in the temporary file by now
            (tmp,) = out.iterdir()
            assert tmp.name.startswith(".") and tmp.stat().st_size > 44
            raise failure("stop")
        return original(self, *args, **kw)

    monkeypatch.setattr(SpeechEnhancer, "enhance_channel", fail_in_second_segment)
    assert cli(src, out / "out.wav", tiny_audio_weights, "--method", "predictive") == code
    assert len(seen) == 2 and list(out.iterdir()) == []   # no output, no temporary file


def test_write_audio_stream_clips_pcm_and_is_atomic(tmp_path):
    info = sf.info(str(write_16k(tmp_path / "ref.wav", np.zeros(100), "PCM_16")))
    target = tmp_path / "o.wav"

    def produce(write):
        write(np.full((1, 50), 2.0, np.float32))
        write(np.full((1, 50), -2.0, np.float32))
        return "done"

    assert write_audio_stream(target, 16000, 1, info, produce) == "done"
    data, _ = sf.read(str(target), dtype="int16")
    assert data.tolist() == [32767] * 50 + [-32768] * 50

    def broken(write):
        write(np.zeros((1, 50), np.float32))
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_audio_stream(tmp_path / "b.wav", 16000, 1, info, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.wav", "ref.wav"]


def test_scan_levels_reads_blocks_in_order(enhancer):
    blocks = [np.array([[0.1, -0.5], [0.0, 0.2]], np.float32), np.array([[0.3], [-0.7]], np.float32)]
    length, peaks = scan_levels(iter(blocks), 8)
    assert length == 3 and peaks.tolist() == pytest.approx([0.5, 0.7])
    with pytest.raises(InputError, match="clip.wav: empty"):
        scan_levels(iter([]), 16000, "clip.wav")
    with pytest.raises(InputError, match="input: empty"):   # the API's empty array too (was a reshape error)
        enhancer(np.zeros(0, np.float32), 16000)

"""``python -m audio.enhance``: formats, rates, channels, folders and every error path."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio.enhance import main


@pytest.fixture
def run(tiny_audio_weights):
    def _run(*args):
        return main([*map(str, args), "--weights", str(tiny_audio_weights), "--quiet", "--device", "cpu",
                     "--method", "predictive"])
    return _run


def write(path, data, rate=16000, subtype=None):
    sf.write(str(path), data, rate, subtype=subtype, format="OGG" if path.suffix == ".opus" else None)
    return path


def test_file_keeps_rate_channels_and_subtype(run, tmp_path, speech_clip):
    stereo = np.stack([speech_clip[:30000], speech_clip[:30000] * 0.3], axis=1)
    src = write(tmp_path / "in.wav", stereo, 22050, "PCM_24")
    assert run(src, "-o", tmp_path / "out.wav") == 0
    info = sf.info(str(tmp_path / "out.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 2, "PCM_24", 30000)


def needs(fmt, subtype):
    """Skip where the installed libsndfile lacks ``fmt``/``subtype`` (MP3 needs libsndfile >= 1.1)."""
    return pytest.mark.skipif(not sf.check_format(fmt, subtype), reason=f"libsndfile without {fmt} {subtype}")


@pytest.mark.parametrize("ext", [".flac", ".ogg", ".aiff", pytest.param(".mp3", marks=needs("MP3", "MPEG_LAYER_III")),
                                 pytest.param(".opus", marks=needs("OGG", "OPUS"))])
def test_other_formats(run, tmp_path, speech_clip, ext):
    src = write(tmp_path / f"in{ext}", speech_clip, 16000, subtype="OPUS" if ext == ".opus" else None)
    assert run(src, "-o", tmp_path / f"out{ext}") == 0
    data, rate = sf.read(str(tmp_path / f"out{ext}"))
    assert rate == 16000 and abs(len(data) - len(speech_clip)) <= 1


def test_folder_with_bad_files_lists_failures(run, tmp_path, speech_clip, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write(src / "good.wav", speech_clip)
    (src / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage")
    write(src / "silent.flac", np.zeros(16000))
    write(src / "short.wav", speech_clip[:1000])
    write(src / "nan.wav", np.full(16000, np.nan), subtype="FLOAT")
    assert run(src, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    for name, problem in (("corrupt.wav", "cannot read"), ("silent.flac", "silent"), ("short.wav", "too short"),
                          ("nan.wav", "NaN")):
        assert any(name in line and problem in line for line in err.splitlines()), (name, err)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.wav"]


def test_refuses_to_overwrite_input(run, tmp_path, speech_clip, capsys):
    src = write(tmp_path / "in.wav", speech_clip)
    before = src.read_bytes()
    assert run(src, "-o", src) == 2
    assert "overwrite" in capsys.readouterr().err and src.read_bytes() == before


def test_empty_folder_and_missing_input(run, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", "-o", tmp_path / "out") == 2
    assert run(tmp_path / "missing.wav", "-o", tmp_path / "out.wav") == 2
    err = capsys.readouterr().err
    assert "no supported files" in err and "no such file" in err


def test_bad_output_type_and_steps(run, tmp_path, speech_clip, capsys):
    src = write(tmp_path / "in.wav", speech_clip)
    assert run(src, "-o", tmp_path / "out.m4a") == 2
    assert run(src, "-o", tmp_path / "out.wav", "--steps", "3") == 2
    err = capsys.readouterr().err
    assert "unsupported output type" in err and "exactly one step" in err
    assert not (tmp_path / "out.wav").exists()


def test_missing_weights_folder(tmp_path, speech_clip, capsys):
    src = write(tmp_path / "in.wav", speech_clip)
    assert main([str(src), "-o", str(tmp_path / "o.wav"), "--weights", str(tmp_path / "nope"), "--quiet"]) == 2
    assert "weights folder not found" in capsys.readouterr().err


def test_dereverb_and_summary(tiny_audio_weights, tmp_path, speech_clip, capsys):
    src = write(tmp_path / "in.wav", speech_clip)
    code = main([str(src), "-o", str(tmp_path / "o.wav"), "--weights", str(tiny_audio_weights), "--task", "dereverb",
                 "--method", "onestep", "--steps", "2", "--device", "cpu"])
    assert code == 0
    assert "1/1 files" in capsys.readouterr().out


def one_line_error(capsys) -> str:
    """The only line on stderr (no traceback, no progress)."""
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_bad_device_is_one_line(tmp_path, speech_clip, capsys):
    src = write(tmp_path / "in.wav", speech_clip)
    for device in ("bogus", "gpu"):
        assert main([str(src), "-o", str(tmp_path / "o.wav"), "--device", device]) == 2
        assert one_line_error(capsys) == f"error: --device {device}: not a device (use auto, cpu, cuda, cuda:N or mps)"
    assert not (tmp_path / "o.wav").exists()


@needs("MP3", "MPEG_LAYER_III")
def test_mp3_to_wav_and_back(run, tmp_path, speech_clip):
    stereo = np.stack([speech_clip, speech_clip * 0.5], axis=1)
    src = write(tmp_path / "in.mp3", stereo, 22050)
    assert run(src, "-o", tmp_path / "out.wav") == 0
    info = sf.info(str(tmp_path / "out.wav"))   # the MP3 codec cannot live in a WAV: 16-bit PCM
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 22050, 2)
    assert run(tmp_path / "out.wav", "-o", tmp_path / "again.mp3") == 0
    assert sf.info(str(tmp_path / "again.mp3")).subtype == "MPEG_LAYER_III"


@needs("MP3", "MPEG_LAYER_III")
@pytest.mark.parametrize("channels,rate", [(3, 16000), (1, 96000)])
def test_output_that_cannot_hold_the_input_fails_before_loading(tmp_path, speech_clip, capsys, channels, rate):
    src = write(tmp_path / "in.wav", np.stack([speech_clip] * channels, axis=1), rate)
    # a missing weights folder would be the error if the models were loaded first
    code = main([str(src), "-o", str(tmp_path / "out.mp3"), "--weights", str(tmp_path / "nope"), "--device", "cpu"])
    assert code == 2
    line = one_line_error(capsys)
    assert str(src) in line and f"{channels} channel(s) at {rate} Hz cannot be written as .mp3" in line
    assert "/." not in line   # no hidden temporary file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


@pytest.mark.parametrize("sub", ["", "new/"])
def test_read_only_output_folder_fails_before_loading(tmp_path, speech_clip, capsys, read_only_dir, sub):
    src = write(tmp_path / "in.wav", speech_clip)
    target = read_only_dir / f"{sub}out.wav"
    code = main([str(src), "-o", str(target), "--weights", str(tmp_path / "nope"), "--device", "cpu"])
    assert code == 2
    line = one_line_error(capsys)
    assert f"{read_only_dir}: " in line and "not writable" in line and "/." not in line

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
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def test_file_keeps_rate_channels_and_subtype(run, tmp_path, speech_clip):
    stereo = np.stack([speech_clip[:30000], speech_clip[:30000] * 0.3], axis=1)
    src = write(tmp_path / "in.wav", stereo, 22050, "PCM_24")
    assert run(src, "-o", tmp_path / "out.wav") == 0
    info = sf.info(str(tmp_path / "out.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (22050, 2, "PCM_24", 30000)


@pytest.mark.parametrize("ext", [".flac", ".ogg"])
def test_other_formats(run, tmp_path, speech_clip, ext):
    src = write(tmp_path / f"in{ext}", speech_clip, 16000)
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
    assert run(src, "-o", tmp_path / "out.mp3") == 2
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

"""Fault tests for the command lines: a run killed mid-folder (Ctrl-C, SIGKILL) leaves every finished
output complete, and a re-run with ``--skip-existing`` finishes the rest without touching them.

The CLI runs as a real subprocess (tiny random-weight models, ``--tile 16`` on 96x96 images: a
fraction of a second to a couple of seconds per file), and is signalled as soon as its first output
appears. Every wait is bounded, and the subprocess is killed whatever happens.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from shared.cli import INTERRUPTED, run_batch
from shared.files import remove_stale_temporaries

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 10
SIDE = 96          # input side; outputs are x4 (36 tiles of 16 px: enough work left to interrupt)
START_TIMEOUT = 180   # seconds for the first output (imports + model load on a busy 2-core CI box)
RUN_TIMEOUT = 240     # seconds for a whole run


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(N_FILES):
        assert cv2.imwrite(str(src / f"img{i}.png"), (rng.random((SIDE, SIDE, 3)) * 255).astype(np.uint8))
    return src


def sr_command(src, out, weights, *extra):
    return [sys.executable, "-m", "restore.sr", str(src), "-o", str(out), "--weights", str(weights),
            "--device", "cpu", "--tile", "16", *extra]


def outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if not p.name.startswith(".")) if out.exists() else []


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def assert_complete(paths):
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img is not None, f"{p.name} does not decode"
        assert img.shape == (4 * SIDE, 4 * SIDE, 3), f"{p.name}: {img.shape}"


def start_and_signal(cmd, out: Path, sig) -> tuple[subprocess.CompletedProcess, list[Path]]:
    """Start ``cmd``, send ``sig`` once its first output exists, and wait for it to end."""
    # a shell running this suite in the background ignores SIGINT, and a child inherits that (Python then
    # installs no KeyboardInterrupt handler): give the CLI the default disposition a terminal user has
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not outputs(out):
            assert proc.poll() is None, f"the run ended before any output: {proc.communicate()}"
            assert time.monotonic() < deadline, "no output appeared in time"
            time.sleep(0.02)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), outputs(out)


def rerun_skip_existing(cmd, out: Path, finished: list[Path]) -> subprocess.CompletedProcess:
    """Re-run with ``--skip-existing``: every output complete, the finished ones untouched."""
    before = {p.name: p.stat().st_mtime_ns for p in finished}
    done = subprocess.run([*cmd, "--skip-existing"], cwd=ROOT, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in outputs(out)] == [f"img{i}.png" for i in range(N_FILES)]
    assert_complete(outputs(out))
    assert {name: (out / name).stat().st_mtime_ns for name in before} == before   # not rewritten
    left = N_FILES - len(before)
    assert f"{left}/{left} files" in done.stdout and f"{len(before)} skipped" in done.stdout, done.stdout
    return done


def test_sigint_mid_folder_then_skip_existing(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    cmd = sr_command(folder, out, tiny_weights)
    result, finished = start_and_signal([*cmd, "--quiet"], out, signal.SIGINT)
    assert result.returncode == INTERRUPTED, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("interrupted:")]
    assert len(lines) == 1, result.stderr
    m = re.fullmatch(rf"interrupted: (\d+) of {N_FILES} files done; re-run with --skip-existing to finish", lines[0])
    assert m, lines[0]
    # an interrupt landing just after a rename counts that file as not done: it exists all the same
    assert int(m.group(1)) <= len(finished) <= int(m.group(1)) + 1
    assert 1 <= len(finished) < N_FILES, "the interrupt did not land mid-folder"
    assert hidden(out) == []                     # atomic_write removed its temporary file
    assert_complete(finished)
    rerun_skip_existing(cmd, out, finished)
    assert hidden(out) == []


def test_sigkill_mid_folder_then_skip_existing(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    cmd = sr_command(folder, out, tiny_weights)
    result, finished = start_and_signal([*cmd, "--quiet"], out, signal.SIGKILL)
    assert result.returncode == -signal.SIGKILL
    assert 1 <= len(finished) < N_FILES, "the kill did not land mid-folder"
    assert_complete(finished)   # whatever has its real name is whole; a temporary file may remain
    # what a kill inside a write leaves, for sure: a stale temporary file of an unfinished output;
    # hidden files that are not atomic_write temporaries of this run's outputs must survive
    missing = f"img{N_FILES - 1}"
    (out / f".{missing}.k1ll_3d9.png").write_bytes(b"\x89PNG half-written")
    keep = [f".{missing}.notes.txt", ".keepme.png", f".{missing}.toolongname.png"]
    for name in keep:
        (out / name).write_text("not ours")
    rerun_skip_existing(cmd, out, finished)
    assert hidden(out) == sorted(keep)


# --- in-process checks of the shared skeleton: fast, no models -------------------------------------------

def args_for(src, out, **kw):
    return SimpleNamespace(input=str(src), output=str(out), device="cpu", quiet=False, skip_existing=True, **kw)


def test_all_skipped_exits_0_without_loading(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    for i in range(N_FILES):
        (out / f"img{i}.png").write_bytes(b"existing")
    stale = out / ".img3.abcdefgh.png"
    stale.write_bytes(b"")

    def load():
        raise AssertionError("models loaded although every output exists")

    assert run_batch(args_for(folder, out), [".png"], load) == 0
    assert f"{N_FILES} skipped" in capsys.readouterr().out
    assert not stale.exists()
    assert all((out / f"img{i}.png").read_bytes() == b"existing" for i in range(N_FILES))


def test_without_skip_existing_outputs_are_overwritten(folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.png").write_bytes(b"old")
    seen = []

    def load():
        return (lambda job: seen.append(job.target.name) or 0), "fake"

    args = args_for(folder, out)
    args.skip_existing = False
    assert run_batch(args, [".png"], load) == 0
    assert seen == [f"img{i}.png" for i in range(N_FILES)]


def test_keyboard_interrupt_in_a_job(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.png").write_bytes(b"existing")   # skipped: counts as done

    def load():
        def handle(job):
            if job.target.name == "img3.png":
                raise KeyboardInterrupt
            return 1
        return handle, "fake"

    assert run_batch(args_for(folder, out), [".png"], load) == INTERRUPTED
    err = capsys.readouterr().err
    assert f"interrupted: 3 of {N_FILES} files done; re-run with --skip-existing to finish" in err


def test_keyboard_interrupt_inside_atomic_write_removes_the_temporary(tmp_path):
    from shared.files import atomic_write

    def write(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "a.png", write)
    assert list(tmp_path.iterdir()) == []


def test_remove_stale_temporaries_only_matches_the_targets(tmp_path):
    names = [".a.abcd1234.png", ".a.b.abcd1234.png", ".a.abcd1234.jpg", ".a.abc.png", ".b.abcd1234.png", "a.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    removed = remove_stale_temporaries([tmp_path / "a.png", tmp_path / "missing" / "x.png"])
    assert [p.name for p in removed] == [".a.abcd1234.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


def test_audio_skip_existing_all_present(tmp_path, capsys):
    """The audio CLI shares the option: every output present -> exit 0, nothing loaded or touched."""
    import soundfile as sf

    from audio.enhance import main

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    sf.write(str(src / "a.wav"), np.zeros(1600, np.float32), 16000)
    (out / "a.wav").write_bytes(b"existing")
    assert main([str(src), "-o", str(out), "--weights", str(tmp_path / "no_weights_here"), "--device", "cpu",
                 "--skip-existing"]) == 0
    assert "1 skipped" in capsys.readouterr().out
    assert (out / "a.wav").read_bytes() == b"existing"

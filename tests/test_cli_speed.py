"""The command lines answer ``--help``, ``--version`` and argument errors at once (each in a fresh
interpreter), because nothing heavy is imported before ``main`` parses its arguments; and
inference never imports Lightning."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIS = ("restore.sr", "audio.enhance", "restore.mri")
LIMIT_S = 1.5
HEAVY = ("torch", "diffusers", "lightning", "pytorch_lightning", "peft", "torchaudio", "torchmetrics")


def python(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run a fresh interpreter in the repository root; return the process and its wall time."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    return proc, time.perf_counter() - start


def heavy_modules(code: str) -> list[str]:
    """Top-level heavy packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc, _ = python("-c", probe)
    assert proc.returncode == 0, proc.stderr
    return [m for m in json.loads(proc.stdout.splitlines()[-1]) if m in HEAVY]


@pytest.mark.parametrize("module", CLIS)
@pytest.mark.parametrize("args,code,stream,expect", [
    (["--help"], 0, "stdout", "--dtype"),
    (["--version"], 0, "stdout", "fastdiff-suite"),
    (["in.wav", "-o", "out.wav", "--dtype", "float64"], 2, "stderr", "invalid choice: 'float64'"),
    (["in.wav", "-o", "out.wav", "--device", "gpu"], 2, "stderr",
     "error: --device gpu: not a device (use auto, cpu, cuda, cuda:N or mps)"),
])
def test_answers_at_once(module, args, code, stream, expect):
    answers_at_once(module, args, code, stream, expect)


def answers_at_once(module, args, code, stream, expect):
    """``python -m module args`` exits with ``code``, ``expect`` in ``stream``, no traceback, within LIMIT_S
    (the best of two runs, so a busy machine does not fail a fast command: importing torch alone takes seconds)."""
    for _ in range(2):
        proc, seconds = python("-m", module, *args)
        if seconds < LIMIT_S:
            break
    assert proc.returncode == code, proc.stderr
    assert expect in getattr(proc, stream)
    assert "Traceback" not in proc.stderr
    assert seconds < LIMIT_S, f"python -m {module} {' '.join(args)} took {seconds:.2f} s"


@pytest.mark.parametrize("args,code,stream,expect", [
    (["--help"], 0, "stdout", "sample"),
    (["--version"], 0, "stdout", "fastdiff-suite"),
    (["sample", "--help"], 0, "stdout", "--reward-calls"),
    (["sample", "-n", "4", "-o", "out.csv", "--dtype", "float64"], 2, "stderr", "invalid choice: 'float64'"),
    (["sample", "-n", "4", "-o", "out.csv", "--device", "gpu"], 2, "stderr",
     "error: --device gpu: not a device (use auto, cpu, cuda, cuda:N or mps)"),
    (["score", "missing.csv", "-o", "r.json"], 2, "stderr", "error: missing.csv: no such file"),
])
def test_molecules_answers_at_once(args, code, stream, expect):
    answers_at_once("science.molecules", args, code, stream, expect)


def test_device_error_is_one_line():
    proc, _ = python("-m", "audio.enhance", "in.wav", "-o", "out.wav", "--device", "bogus")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: --device bogus: not a device (use auto, cpu, cuda, cuda:N or mps)"]


def test_command_modules_import_nothing_heavy():
    code = ("import restore, audio, restore.sr, restore.sr.cli, audio.enhance, restore.mri.cli, shared.cli, shared.files\n"
            "import science.molecules.cli\n"
            "restore.sr.cli.build_parser().parse_args(['a.png', '-o', 'b.png'])\n"
            "audio.enhance.build_parser().parse_args(['a.wav', '-o', 'b.wav'])")
    assert heavy_modules(code) == []


def test_pipelines_load_lazily_and_without_lightning():
    """The packages still export their pipelines, and inference does not import Lightning."""
    loaded = heavy_modules("from restore import SuperResolutionPipeline\nfrom audio import SpeechEnhancer")
    assert "torch" in loaded
    assert not {"lightning", "pytorch_lightning", "torchmetrics"} & set(loaded), loaded

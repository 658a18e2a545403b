"""Command line: ``python -m audio.enhance INPUT -o OUTPUT [options]``.

INPUT is an audio file or a folder of them (wav, flac, ogg; any sample rate and channel count).
OUTPUT is a file or a folder (created); outputs keep the base names, the input's sample rate,
channel count and (where the output format allows) sample format. Long recordings are processed
in overlapping chunks with bounded memory. A bad file is reported on one line and skipped;
failures are listed at the end and the exit code is 1. Outputs are written atomically and never
over an input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

import numpy as np

from shared.files import (InputError, add_common_options, atomic_write, check_output_types, fail, plan_jobs,
                          report_failures, run_jobs)

from .data import TASKS
from .enhancer import DEFAULT_STEPS, METHODS, SpeechEnhancer, check_waveform

EXTENSIONS = (".wav", ".flac", ".ogg")


def read_audio(path: Path) -> tuple[np.ndarray, int, str]:
    """``(samples (C, L) float32, sample_rate, subtype)``; :class:`InputError` if unreadable."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, ValueError) as err:
        raise InputError(f"{path}: cannot read audio ({str(err).splitlines()[0][:120]})") from None
    return data.T.copy(), rate, info.subtype


def write_audio(path: Path, samples: np.ndarray, rate: int, subtype: Optional[str]) -> None:
    """Write ``samples (C, L)`` atomically; keeps ``subtype`` if the output format supports it."""
    import soundfile as sf

    fmt = path.suffix.lstrip(".").upper()
    if subtype is None or not sf.check_format(fmt, subtype):
        subtype = sf.default_subtype(fmt)
    if subtype.startswith("PCM") or subtype in ("ULAW", "ALAW"):
        samples = np.clip(samples, -1.0, 32767 / 32768)
    atomic_write(path, lambda tmp: sf.write(str(tmp), samples.T, rate, subtype=subtype, format=fmt))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audio.enhance",
                                description="Speech denoising and dereverberation with fast diffusion models.")
    p.add_argument("input", help="audio file or folder (wav, flac, ogg)")
    p.add_argument("-o", "--output", required=True, help="output file, or folder (created) for a folder input")
    p.add_argument("--task", choices=TASKS, default="denoise", help="remove noise, or reverberation (default denoise)")
    p.add_argument("--method", choices=METHODS, default="onestep",
                   help="onestep (consistency model, default), storm, sgmse or predictive")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (defaults: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")")
    add_common_options(p)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jobs = plan_jobs(args.input, args.output, EXTENSIONS)
        check_output_types(jobs, EXTENSIONS)
        enhancer = SpeechEnhancer.from_pretrained(args.weights, device=args.device)
        steps = enhancer.check_method(args.method, args.steps)
    except InputError as err:
        return fail(str(err))

    from tqdm.auto import tqdm

    def handle(job) -> int:
        samples, rate, subtype = read_audio(job.source)
        check_waveform(samples, rate, str(job.source))   # here, so the message names the file
        n = enhancer.num_chunks(samples.shape[-1], rate) * samples.shape[0]
        chunks = tqdm(total=n, unit="chunk", leave=False, disable=args.quiet or n < 2)
        out = enhancer(samples, rate, task=args.task, method=args.method, steps=steps, seed=args.seed,
                       on_chunk=lambda: chunks.update(1))
        chunks.close()
        write_audio(job.target, out, rate, subtype)
        return enhancer.last_run.network_evaluations

    failures, evaluations, seconds = run_jobs(jobs, handle, args.quiet)
    if not args.quiet:
        done = len(jobs) - len(failures)
        target = jobs[0].target if len(jobs) == 1 else Path(args.output)
        print(f"{done}/{len(jobs)} files -> {target} in {seconds:.2f} s, {evaluations} network evaluations "
              f"({args.method}, {steps} step{'s' if steps != 1 else ''}, {args.task})")
    return report_failures(failures)


if __name__ == "__main__":
    raise SystemExit(main())

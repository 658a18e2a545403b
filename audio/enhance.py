"""Command line: ``python -m audio.enhance INPUT -o OUTPUT [options]``.

INPUT is an audio file or a folder of them (wav, flac, ogg, opus, mp3, aiff; any sample rate and
channel count). OUTPUT is a file or a folder (created); outputs keep the base names, the input's
sample rate, channel count and (where the output format allows) sample format; an output that
cannot hold its input (MP3: at most 2 channels, 8-48 kHz) is refused before any work. Long
recordings are processed in overlapping chunks with bounded memory. A bad file is reported on one
line and skipped; failures are listed at the end and the exit code is 1. Outputs are written
atomically and never over an input.

Arguments are parsed before torch and the models are imported (in ``main``), so ``--help``,
``--version`` and argument errors answer at once. Inference never imports Lightning.
"""

from __future__ import annotations

import argparse
from typing import Optional

from shared.cli import add_common_options, model_options, progress, run_batch

from .options import DEFAULT_STEPS, EXTENSIONS, METHODS, TASKS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audio.enhance",
                                description="Speech denoising and dereverberation with fast diffusion models.")
    p.add_argument("input", help=f"audio file or folder ({', '.join(e.lstrip('.') for e in EXTENSIONS)})")
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
    from .audiofile import check_writable, read_audio, write_audio

    def load():
        """Load the models (the first torch import) and check the method and steps against them."""
        from .enhancer import SpeechEnhancer, check_waveform

        enhancer = SpeechEnhancer.from_pretrained(args.weights, **model_options(args))
        steps = enhancer.check_method(args.method, args.steps)

        def handle(job) -> int:
            samples, info = read_audio(job.source)
            rate = info.samplerate
            check_waveform(samples, rate, str(job.source))   # here, so the message names the file
            chunks = progress(enhancer.num_chunks(samples.shape[-1], rate) * samples.shape[0], "chunk", args.quiet)
            out = enhancer(samples, rate, task=args.task, method=args.method, steps=steps, seed=args.seed,
                           channels_first=True, on_chunk=lambda: chunks.update(1))
            chunks.close()
            write_audio(job.target, out, rate, info)
            return enhancer.last_run.network_evaluations

        return handle, f"{args.method}, {steps} step{'s' if steps != 1 else ''}, {args.task}"

    return run_batch(args, EXTENSIONS, load, check=lambda job: check_writable(job.source, job.target))


if __name__ == "__main__":
    raise SystemExit(main())

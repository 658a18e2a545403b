"""Command line: ``python -m audio.enhance INPUT -o OUTPUT [options]``.

INPUT is an audio file or a folder of them (wav, flac, ogg, opus, mp3, aiff; any sample rate and
channel count). OUTPUT is a file or a folder (created); outputs keep the base names, the input's
sample rate, channel count and (where the output format allows) sample format; an output that
cannot hold its input (MP3: at most 2 channels, 8-48 kHz) is refused before any work. A bad file
(unreadable, empty, non-finite, too short or silent) is reported on one line and skipped before
anything is written; failures are listed at the end and the exit code is 1. Outputs are written
atomically and never over an input.

Files are streamed, never loaded whole: a first pass reads the input in blocks to check it and
find each channel's peak, then :meth:`audio.enhancer.SpeechEnhancer.enhance_stream` reads it in
segments (60 s, crossfaded) and writes the output block by block into the temporary file that is
renamed into place at the end. Peak memory is the models' plus one segment's work, whatever the
recording's length (on a CPU, 16 kHz mono: 1.1-1.2 GB in all from 1 to 30 minutes).

Arguments are parsed before torch and the models are imported (in ``main``), so ``--help``,
``--version`` and argument errors answer at once. Inference never imports Lightning.
"""

from __future__ import annotations

import argparse
from typing import Optional

from shared.cli import add_common_options, model_options, progress, run_batch, run_program

from .options import DEFAULT_METHOD, DEFAULT_STEPS, EXTENSIONS, METHODS, TASKS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m audio.enhance",
                                description="Speech denoising and dereverberation with fast diffusion models.")
    p.add_argument("input", help=f"audio file or folder ({', '.join(e.lstrip('.') for e in EXTENSIONS)})")
    p.add_argument("-o", "--output", required=True, help="output file, or folder (created) for a folder input")
    p.add_argument("--task", choices=TASKS, default="denoise", help="remove noise, or reverberation (default denoise)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"predictive (one pass), onestep (consistency model), storm or sgmse (default {DEFAULT_METHOD})")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (defaults: " + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")")
    add_common_options(p)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .audiofile import AudioReader, check_writable, write_audio_stream

    def load():
        """Load the models (the first torch import) and check the method and steps against them."""
        from .enhancer import SpeechEnhancer, scan_levels

        enhancer = SpeechEnhancer.from_pretrained(args.weights, **model_options(args))
        steps = enhancer.check_method(args.method, args.steps)

        def handle(job) -> int:
            with AudioReader(job.source) as source:
                rate = source.rate
                length, peaks = scan_levels(source.blocks(), rate, str(job.source))   # names the file, writes nothing
                chunks = progress(enhancer.num_chunks(length, rate) * source.channels, "chunk", args.quiet)

                def enhance(write) -> int:
                    return enhancer.enhance_stream(source.read, length, rate, write, peaks, task=args.task,
                                                   method=args.method, steps=steps, seed=args.seed,
                                                   on_chunk=lambda: chunks.update(1)).network_evaluations
                try:
                    return write_audio_stream(job.target, rate, source.channels, source.info, enhance)
                finally:
                    chunks.close()

        return handle, f"{args.method}, {steps} step{'s' if steps != 1 else ''}, {args.task}"

    return run_batch(args, EXTENSIONS, load, check=lambda job: check_writable(job.source, job.target))


if __name__ == "__main__":
    run_program(main)

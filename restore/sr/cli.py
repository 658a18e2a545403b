"""Command line: ``python -m restore.sr INPUT -o OUTPUT [options]``.

INPUT is an image file or a folder of images (png, jpg/jpeg, bmp, webp, tif/tiff; grey, RGBA and
16-bit kept as such). OUTPUT is a file or a folder (created); outputs keep the base names.
A bad file is reported on one line and skipped; failures are listed at the end and the exit
code is 1. Outputs are written atomically and never over an input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

from shared.files import InputError, plan_jobs

from .colorfix import COLOR_FIXES
from .images import EXTENSIONS, read_image, write_image
from .pipeline import DEFAULT_COLOR_FIX, SuperResolutionPipeline


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m restore.sr",
        description="x4 image super-resolution with a one-step diffusion student or the ResShift teacher.",
    )
    p.add_argument("input", help="image file or folder of images")
    p.add_argument("-o", "--output", required=True, help="output file, or folder (created) for a folder input")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--one-step", action="store_true",
                      help="one network evaluation with the LoRA student (default)")
    mode.add_argument("--steps", type=int, metavar="N", help="use the ResShift teacher with N steps (1..T)")
    p.add_argument("--deterministic", action="store_true", help="with --steps: the deterministic (SinSR) sampler")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (only 4 is supported)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile side in input pixels (default 128 bounds memory; 0 = whole image)")
    p.add_argument("--tile-overlap", type=int, default=None, help="tile overlap in input pixels (default 16)")
    p.add_argument("--color-fix", choices=COLOR_FIXES, default=DEFAULT_COLOR_FIX,
                   help=f"colour correction against the input (default {DEFAULT_COLOR_FIX})")
    p.add_argument("--pix", type=float, default=1.0, help="one-step: weight of the pixel (fidelity) adapter")
    p.add_argument("--detail", type=float, default=1.0, help="one-step: weight of the detail adapter")
    p.add_argument("--seed", type=int, default=0, help="random seed for the stochastic teacher sampler")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--weights", default=None, help="local weights folder (default: the shipped models)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scale != 4:
        return _fail(f"--scale {args.scale} is not supported yet; the shipped models are x4")
    if args.deterministic and args.steps is None:
        return _fail("--deterministic applies to the teacher; add --steps N")
    one_step = args.steps is None
    try:
        jobs = plan_jobs(args.input, args.output, EXTENSIONS)
        for job in jobs:
            if job.target.suffix.lower() not in EXTENSIONS:
                raise InputError(f"{job.target}: unsupported output type '{job.target.suffix}'")
        pipe = SuperResolutionPipeline.from_pretrained(args.weights, device=args.device)
        pipe._check_mode(one_step, args.steps)
    except InputError as err:
        return _fail(str(err))

    from tqdm.auto import tqdm

    failures: list[str] = []
    evaluations = 0
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), unit="file", disable=args.quiet, dynamic_ncols=True)
    for job in jobs:
        bar.set_description(job.source.name)
        try:
            planes = read_image(job.source)
            h, w = planes.rgb.shape[-2:]
            n_tiles = pipe.num_tiles(h, w, args.tile, args.tile_overlap)
            tiles = tqdm(total=n_tiles, unit="tile", leave=False, disable=args.quiet or n_tiles < 2)
            out = pipe.upscale_planes(planes, one_step=one_step, steps=args.steps,
                                      deterministic=args.deterministic, pix=args.pix, detail=args.detail,
                                      tile=args.tile, tile_overlap=args.tile_overlap,
                                      color_fix_method=args.color_fix, seed=args.seed,
                                      on_tile=lambda: tiles.update(1))
            tiles.close()
            write_image(job.target, out)
            evaluations += pipe.last_run.network_evaluations
        except InputError as err:
            failures.append(str(err))
            bar.write(f"error: {err}", file=sys.stderr)
        except Exception as err:  # one file failing must not stop a folder
            failures.append(f"{job.source}: {type(err).__name__}: {err}")
            bar.write(f"error: {job.source}: {type(err).__name__}: {err}", file=sys.stderr)
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - start
    done = len(jobs) - len(failures)
    if not args.quiet:
        target = jobs[0].target if len(jobs) == 1 else Path(args.output)
        print(f"{done}/{len(jobs)} files -> {target} in {seconds:.2f} s, {evaluations} network evaluations "
              f"({'one-step' if one_step else f'teacher, {args.steps} steps'})")
    if failures:
        print(f"{len(failures)} file(s) failed:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        return 1
    return 0

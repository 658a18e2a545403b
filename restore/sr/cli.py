"""Command line: ``python -m restore.sr INPUT -o OUTPUT [options]``.

INPUT is an image file or a folder of images (png, jpg/jpeg, bmp, webp, tif/tiff; grey, RGBA and
16-bit kept as such). OUTPUT is a file or a folder (created); outputs keep the base names.
A bad file is reported on one line and skipped; failures are listed at the end and the exit
code is 1. Outputs are written atomically and never over an input.

Arguments are parsed before torch and the models are imported (in ``main``), so ``--help``,
``--version`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
from typing import Optional

from shared.cli import add_common_options, fail, model_options, progress, run_batch
from shared.files import InputError

from .options import (COLOR_FIXES, DEFAULT_COLOR_FIX, DEFAULT_DETAIL, DEFAULT_PIX, EXTENSIONS, check_blend,
                      resolve_mode, tile_settings)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m restore.sr",
        description="x4 (or x2) image super-resolution with a one-step diffusion student or the ResShift teacher.",
    )
    p.add_argument("input", help="image file or folder of images")
    p.add_argument("-o", "--output", required=True, help="output file, or folder (created) for a folder input")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--one-step", action="store_true",
                      help="one network evaluation with the LoRA student (default)")
    mode.add_argument("--steps", type=int, metavar="N", help="use the ResShift teacher with N steps (1..T)")
    p.add_argument("--deterministic", action="store_true",
                   help="the teacher's deterministic (SinSR) sampler, with --steps N or all T steps")
    p.add_argument("--scale", type=int, default=4, choices=[2, 4],
                   help="upscaling factor (default 4; 2 runs the x4 model and box-averages its output 2 x 2)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile side in input pixels (default 128 bounds memory; 0 = whole image)")
    p.add_argument("--tile-overlap", type=int, default=None, help="tile overlap in input pixels (default 16)")
    p.add_argument("--color-fix", choices=COLOR_FIXES, default=DEFAULT_COLOR_FIX,
                   help=f"colour correction against the input (default {DEFAULT_COLOR_FIX})")
    p.add_argument("--pix", type=float, default=DEFAULT_PIX,
                   help=f"one-step: weight of the pixel (fidelity) adapter (default {DEFAULT_PIX:g})")
    p.add_argument("--detail", type=float, default=DEFAULT_DETAIL,
                   help=f"one-step: weight of the detail (perceptual) adapter (default {DEFAULT_DETAIL:g}; "
                        "1 = PiSA-SR's blend, also one evaluation; other blends cost two)")
    add_common_options(p, seed_help="random seed for the stochastic teacher sampler")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:   # the same checks the API makes, once, before any file is read
        one_step, steps = resolve_mode(True if args.one_step else None, args.steps, args.deterministic)
        check_blend(args.pix, args.detail)
        tile_settings(args.tile, args.tile_overlap)
    except InputError as err:
        return fail(str(err))

    def load():
        """Load the pipeline (the first torch import) and check the mode against its weights."""
        from .images import file_pixel_type, read_image, write_image
        from .pipeline import SuperResolutionPipeline

        pipe = SuperResolutionPipeline.from_pretrained(args.weights, **model_options(args))
        pipe.check_mode(one_step, steps)
        pipe.check_scale(args.scale)

        def handle(job) -> int:
            planes = read_image(job.source)
            h, w = planes.rgb.shape[-2:]
            tiles = progress(pipe.num_tiles(h, w, args.tile, args.tile_overlap), "tile", args.quiet)
            out = pipe.upscale_planes(planes, one_step=one_step, steps=steps,
                                      deterministic=args.deterministic, pix=args.pix, detail=args.detail,
                                      tile=args.tile, tile_overlap=args.tile_overlap,
                                      color_fix_method=args.color_fix, seed=args.seed,
                                      on_tile=lambda: tiles.update(1),
                                      pixel_type=file_pixel_type(planes, job.target), scale=args.scale)
            tiles.close()
            write_image(job.target, out)
            return pipe.last_run.network_evaluations

        return handle, "one-step" if one_step else f"teacher, {steps or len(pipe.teacher.process)} steps"

    return run_batch(args, EXTENSIONS, load)

"""Command line: ``python -m restore.mri INPUT -o OUTPUT [options]``.

INPUT is a fastMRI-layout ``.h5`` file or a folder of them: ``kspace`` complex ``(slices, H, W)``
(single-coil) or ``(slices, coils, H, W)`` (coil sensitivities from a ``coil_maps`` dataset of
the same shape, else estimated by ESPIRiT: :mod:`restore.mri.coils`), already undersampled (zeros where
not measured), ``mask`` ``(W,)`` optional. ``--simulate-acceleration 4|8`` undersamples fully
sampled files first (seeded fastMRI masks). OUTPUT holds ``reconstruction`` float32
``(slices, H, W)`` (magnitude; ``--crop H W`` centre-crops it) and, with ``--samples N > 1``, ``reconstruction_std``. The shipped
ResShift model runs unless ``--weights`` names another (``experiments/restore/mri_resshift.yaml``).
"""

from __future__ import annotations

import argparse
from typing import Optional

from shared.cli import add_common_options, fail, model_options, progress, run_batch

from .options import ACCELERATIONS, DC_MODES, EXTENSIONS, MASK_KINDS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m restore.mri",
                                description="MRI reconstruction from undersampled k-space with a few-step diffusion "
                                            "model and data consistency at every step.")
    p.add_argument("input", help="fastMRI .h5 file or folder of them")
    p.add_argument("-o", "--output", required=True, help="output .h5 file, or folder (created) for a folder input")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--one-step", action="store_true",
                      help="the one-step student (one network evaluation, then data consistency)")
    mode.add_argument("--steps", type=int, default=None, metavar="N",
                      help="ResShift sampler steps (default: the model's T)")
    p.add_argument("--dc", choices=DC_MODES, default="hard",
                   help="data consistency: every step, hard (default) or soft; only at the end; none")
    p.add_argument("--trust", type=float, default=1.0, help="--dc soft: weight of the measured data (lambda > 0)")
    p.add_argument("--samples", type=int, default=1, help="draws per slice; > 1 also writes reconstruction_std")
    p.add_argument("--simulate-acceleration", type=int, choices=ACCELERATIONS, default=None,
                   help="undersample fully sampled input first (fastMRI masks)")
    p.add_argument("--mask", choices=MASK_KINDS, default="random", help="mask of --simulate-acceleration")
    p.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="centre-crop the outputs to H x W (fastMRI's 320 320 convention; default: k-space size)")
    add_common_options(p, seed_help="random seed of the sampler (and of --simulate-acceleration's mask)")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.samples < 1:
        return fail(f"--samples must be >= 1, got {args.samples}")
    if args.one_step and args.samples > 1:
        return fail("--samples > 1 needs the ResShift sampler: the one-step student is deterministic (drop --one-step)")
    if not args.trust > 0:
        return fail(f"--trust must be > 0, got {args.trust}")
    if args.steps is not None and args.steps < 1:
        return fail(f"--steps must be >= 1, got {args.steps}")
    if args.crop is not None and min(args.crop) < 1:
        return fail(f"--crop sizes must be >= 1, got {args.crop[0]} {args.crop[1]}")

    def load():
        """Load the model (the first torch import)."""
        import numpy as np
        import torch

        from shared.files import InputError

        from fastmri.data.transforms import center_crop

        from .files import KSpaceFile, write_reconstruction
        from .masks import column_mask
        from .pipeline import MRIReconstructionPipeline

        try:
            pipe = MRIReconstructionPipeline.from_pretrained(args.weights, **model_options(args))
        except (FileNotFoundError, ValueError) as err:
            raise InputError(f"weights: {err}") from None
        pipe.check_mode(args.one_step)
        steps = None
        if not args.one_step:
            steps = len(pipe.model.process) if args.steps is None else args.steps
            if steps > len(pipe.model.process):
                raise InputError(f"--steps must be in 1..{len(pipe.model.process)} (the model's T)")
        what = "one-step student" if args.one_step else f"ResShift, {steps} steps"

        def handle(job) -> int:
            with KSpaceFile(job.source) as f:
                size = tuple(f.shape[-2:])
                if args.crop is not None and (args.crop[0] > size[0] or args.crop[1] > size[1]):
                    raise InputError(f"{job.source}: --crop {args.crop[0]} {args.crop[1]} is larger than the "
                                     f"{size[0]} x {size[1]} image")
                mask = f.mask
                if args.simulate_acceleration:
                    mask = column_mask(f.width, args.simulate_acceleration, args.mask, seed=args.seed).numpy()
                generator = torch.Generator().manual_seed(args.seed)
                means, stds, nfe = [], [], 0
                bar = progress(f.slices, "slice", args.quiet)
                for i in range(f.slices):
                    k = f.slice(i) * mask
                    try:
                        _, mean, std = pipe.reconstruct(k, mask, f.coil_maps(i) if f.has_coil_maps else None,
                                                        num_inference_steps=steps, samples=args.samples, dc=args.dc,
                                                        trust=args.trust, one_step=args.one_step,
                                                        generator=generator)
                    except InputError as err:
                        raise InputError(f"{job.source}: slice {i}: {err}") from None
                    if args.crop is not None:
                        mean, std = (center_crop(t, tuple(args.crop)) for t in (mean, std))
                    means.append(mean.cpu().numpy())
                    stds.append(std.cpu().numpy())
                    nfe += pipe.last_run.network_evaluations
                    bar.update(1)
                bar.close()
                attrs = {**f.attrs, "acceleration_simulated": args.simulate_acceleration or 0,
                         "reconstruction": f"restore.mri {what}, dc {args.dc}, {args.samples} sample(s)"}
            write_reconstruction(job.target, np.stack(means), np.stack(stds) if args.samples > 1 else None, attrs)
            return nfe

        return handle, f"{what}, dc {args.dc}, {args.samples} sample(s)"

    return run_batch(args, EXTENSIONS, load)

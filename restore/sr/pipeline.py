"""``SuperResolutionPipeline``: x4 super-resolution with the one-step student or the teacher.

    from restore import SuperResolutionPipeline
    pipe = SuperResolutionPipeline.from_pretrained()          # shipped default weights
    big = pipe(image, one_step=True)                          # PIL / numpy / torch in, same out
    big = pipe(image, one_step=False, num_inference_steps=4, generator=torch.Generator().manual_seed(0))

The low-resolution image is processed in Gaussian-blended tiles, each tile padded by reflection
to the backbone's grid multiple; the blended rows stream out top to bottom and are colour-corrected
against the bicubic upsampling of the input and quantised band by band (:mod:`restore.sr.streaming`),
so peak memory is the model, one band of tiles and about 6 bytes per output pixel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Optional

import torch

from shared.checkpoints import load_denoiser, read_meta
from shared.files import InputError, device_from_string
from shared.pipeline import Pipeline, PipelineOutput, RunInfo, as_dtype, grid_multiple, model_folders
from shared.samplers import sample
from shared.student import OneStepStudent
from shared.tiling import count_tiles, pad_to_multiple, tiled_bands

from .degradations import bicubic_up
from .images import Planes, from_user, to_user, user_pixel_type
from .options import (COLOR_FIXES, DEFAULT_COLOR_FIX, DEFAULT_DETAIL, DEFAULT_PIX, check_blend, resolve_mode,
                      tile_settings)
from .streaming import assemble, upscale_alpha

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_STUDENT = WEIGHTS_DIR / "onestep_x4"
DEFAULT_TEACHER = WEIGHTS_DIR / "resshift_x4"

__all__ = ["SuperResolutionPipeline", "pad_to_multiple", "DEFAULT_COLOR_FIX"]


class SuperResolutionPipeline(Pipeline):
    """x4 super-resolution. Holds a one-step student and/or the ResShift teacher.

    Args:
        teacher: the ResShift denoiser (``--steps N``), or None.
        student: the one-step LoRA student (``--one-step``), or None.
        scale: upscaling factor the models were trained for.
        device: where the models run.
        torch_dtype: the models' dtype (float32, bfloat16 or float16).
    """

    def __init__(self, teacher=None, student: Optional[OneStepStudent] = None, scale: int = 4,
                 device: torch.device | str = "cpu", torch_dtype=torch.float32):
        if teacher is None and student is None:
            raise ValueError("a pipeline needs a teacher, a student, or both")
        self.teacher, self.student, self.scale = teacher, student, scale
        self.last_run = RunInfo()
        self.grid_multiple = grid_multiple(self._denoisers())
        self.to(device, torch_dtype)

    def _denoisers(self):
        return [m for m in (self.teacher, self.student.denoiser if self.student else None) if m is not None]

    def modules(self) -> Iterator[torch.nn.Module]:
        return iter([m for m in (self.teacher, self.student) if m is not None])

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: Optional[str | os.PathLike] = None, device: str = "auto",
                        one_step: Optional[bool] = None, torch_dtype=torch.float32) -> "SuperResolutionPipeline":
        """Load local weights (never downloads).

        ``path`` None: the shipped default (student and teacher). ``path`` may be one model
        folder (student or teacher) or a folder holding ``onestep_x4`` / ``resshift_x4``.
        """
        dev = device_from_string(device)
        dtype = as_dtype(torch_dtype)
        teacher = student = None
        scale = 4
        for folder in model_folders(WEIGHTS_DIR if path is None else path, ("onestep_x4", "resshift_x4")):
            meta = read_meta(folder)
            scale = int(meta["extra"].get("scale", 4))
            if "student" in meta["extra"]:
                student, _ = OneStepStudent.from_pretrained(folder, device=dev)
            else:
                teacher, _ = load_denoiser(folder, device=dev)
        return cls(teacher, student, scale=scale, device=dev, torch_dtype=dtype)

    # ----------------------------------------------------------------- core
    def _pad(self, lr: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad ``(B,3,h,w)`` at bottom/right to the backbone's grid multiple (in input pixels)."""
        return pad_to_multiple(lr, max(1, self.grid_multiple // self.scale))

    def _restore_tile(self, lr: torch.Tensor, one_step: bool, steps: Optional[int], deterministic: bool,
                      pix: float, detail: float, generator: torch.Generator) -> torch.Tensor:
        """LR tile in [0,1] -> HR tile in [0,1] (model state lives in [-1,1])."""
        padded, (h, w) = self._pad(lr)
        cond = (padded * 2 - 1).to(self.dtype)
        y = (bicubic_up(padded, self.scale).clamp(0, 1) * 2 - 1).to(self.dtype)
        if one_step:
            x0, nfe = self.student(y, cond, pix=pix, detail=detail)
        else:
            teacher = self.teacher
            x0, nfe = sample(lambda x_t, t: teacher(x_t, t, y, cond), teacher.process, y, num_inference_steps=steps,
                             deterministic=deterministic, generator=generator)
        self.last_run.network_evaluations += nfe
        return ((x0.float() + 1) / 2)[..., : h * self.scale, : w * self.scale].clamp(0, 1)

    def num_tiles(self, height: int, width: int, tile: Optional[int] = None, overlap: Optional[int] = None) -> int:
        tile, overlap = tile_settings(tile, overlap)
        return count_tiles(height, width, tile, overlap)

    @torch.no_grad()
    def upscale_planes(self, planes: Planes, one_step: bool = True, steps: Optional[int] = None,
                       deterministic: bool = False, pix: float = DEFAULT_PIX, detail: float = DEFAULT_DETAIL,
                       tile: Optional[int] = None, tile_overlap: Optional[int] = None,
                       color_fix_method: str = DEFAULT_COLOR_FIX, seed: int = 0,
                       on_tile: Optional[Callable[[], None]] = None,
                       generator: Optional[torch.Generator] = None, pixel_type: torch.dtype = torch.float32,
                       scale: Optional[int] = None) -> Planes:
        """The work behind :meth:`__call__` on :class:`Planes` (used by the CLI). The result holds
        ``pixel_type`` pixels (float32 in [0, 1], uint8 or uint16; one channel for a grey source):
        the tiles are blended, colour-fixed and quantised band by band
        (:mod:`restore.sr.streaming`), so no full-size float image is made for integer outputs.
        ``scale``: the output factor, one of :attr:`scales` (default the models' own)."""
        import time

        start = time.perf_counter()
        scale = self.check_scale(scale)
        self.check_mode(one_step, steps)
        check_blend(pix, detail)
        if color_fix_method not in COLOR_FIXES:
            raise InputError(f"unknown color_fix {color_fix_method!r}; choose from {', '.join(COLOR_FIXES)}")
        self.last_run = RunInfo(method="one-step" if one_step else f"teacher, {steps or len(self.teacher.process)} steps")
        lr = planes.rgb[None].to(self.device)
        h, w = lr.shape[-2:]
        tile, overlap = tile_settings(tile, tile_overlap)
        self.last_run.tiles = count_tiles(h, w, tile, overlap)
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        fn = lambda t: self._restore_tile(t, one_step, steps, deterministic, pix, detail, generator)  # noqa: E731
        bands = tiled_bands(fn, lr, tile, overlap, scale=self.scale, progress=on_tile)
        rgb = assemble(bands, lr, self.scale, color_fix_method, pixel_type, grey=planes.grey,
                       reduce=self.scale // scale)
        alpha = upscale_alpha(planes.alpha, scale, pixel_type)
        self.last_run.seconds = time.perf_counter() - start
        return planes.with_pixels(rgb, alpha)

    @property
    def scales(self) -> list[int]:
        """Output factors these models give: their own, and its divisors > 1 (x2 from a x4 model: its
        output box-averaged over 2 x 2 blocks; measured above bicubic x2, README)."""
        return [s for s in range(2, self.scale + 1) if self.scale % s == 0]

    def check_scale(self, scale: Optional[int]) -> int:
        """``scale`` (default: the models' own) if it is one of :attr:`scales`, else :class:`InputError`."""
        if scale is None:
            return self.scale
        if scale not in self.scales:
            raise InputError(f"scale {scale} is not available: these models give x{' or x'.join(map(str, self.scales))}")
        return int(scale)

    def check_mode(self, one_step: bool, steps: Optional[int]) -> None:
        """:class:`InputError` unless the loaded models can run ``one_step`` / the teacher with ``steps``."""
        if one_step and self.student is None:
            raise InputError("these weights have no one-step student; give teacher steps (steps=N)")
        if not one_step:
            if self.teacher is None:
                raise InputError("these weights have no teacher; use the one-step student")
            T = len(self.teacher.process)
            if steps is not None and not 1 <= int(steps) <= T:
                raise InputError(f"steps must be in 1..{T} (the teacher was trained with T={T})")

    def __call__(self, image, one_step: Optional[bool] = None, steps: Optional[int] = None,
                 deterministic: bool = False, pix: float = DEFAULT_PIX, detail: float = DEFAULT_DETAIL,
                 tile: Optional[int] = None,
                 tile_overlap: Optional[int] = None, color_fix: str = DEFAULT_COLOR_FIX, seed: int = 0, *,
                 num_inference_steps: Optional[int] = None, generator: Optional[torch.Generator] = None,
                 return_dict: bool = False, scale: Optional[int] = None):
        """Super-resolve ``image`` (PIL, numpy ``(H,W[,C])`` or torch ``([B,]C,H,W)``), same kind out,
        ``scale`` times larger (one of :attr:`scales`; default the models' factor).

        The one-step student runs unless teacher steps are asked for (``num_inference_steps``, or
        its older name ``steps``, or ``one_step=False``: the teacher's T steps), stochastic unless
        ``deterministic``. ``generator`` (or ``seed``) drives the teacher's noise. ``pix`` and
        ``detail`` blend the student's adapters (PiSA-SR): the default is the pixel adapter alone,
        ``detail=1`` adds the perceptual one (both one evaluation; other blends cost two).
        ``tile``/``tile_overlap`` are in input pixels (``tile=0``: no tiling). With
        ``return_dict=True`` the result comes as :class:`shared.pipeline.PipelineOutput` with the
        run's :class:`~shared.pipeline.RunInfo` (also kept in ``last_run``).
        """
        one_step, steps = resolve_mode(one_step, steps, deterministic, num_inference_steps)
        planes, kind, info = from_user(image)
        out = self.upscale_planes(planes, one_step, steps, deterministic, pix, detail, tile, tile_overlap,
                                  color_fix, seed, generator=generator, pixel_type=user_pixel_type(planes, kind, info),
                                  scale=scale)
        result = to_user(out, kind, info)
        return PipelineOutput(result, self.last_run) if return_dict else result

    def bicubic(self, image, scale: Optional[int] = None):
        """Plain bicubic x``scale`` upsampling of ``image`` (the reference baseline; default the models' factor)."""
        scale = self.check_scale(scale)
        planes, kind, info = from_user(image)
        rgb = bicubic_up(planes.rgb[None], scale).clamp(0, 1)[0]
        alpha = None if planes.alpha is None else bicubic_up(planes.alpha[None], scale).clamp(0, 1)[0]
        return to_user(planes.with_pixels(rgb, alpha), kind, info)

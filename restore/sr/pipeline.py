"""``SuperResolutionPipeline``: x4 super-resolution with the one-step student or the teacher.

    from restore import SuperResolutionPipeline
    pipe = SuperResolutionPipeline.from_pretrained()          # shipped default weights
    big = pipe(image, one_step=True)                          # PIL / numpy / torch in, same out

The low-resolution image is processed in Gaussian-blended tiles (bounded memory), each tile
padded by reflection to the backbone's grid multiple, and the result colour-corrected against
the bicubic upsampling of the input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from shared.checkpoints import load_denoiser, read_meta
from shared.files import InputError, device_from_string
from shared.samplers import sample
from shared.student import OneStepStudent
from shared.tiling import count_tiles, tiled_apply

from .colorfix import COLOR_FIXES, color_fix
from .degradations import bicubic_up
from .images import Planes, from_user, to_user

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_STUDENT = WEIGHTS_DIR / "onestep_x4"
DEFAULT_TEACHER = WEIGHTS_DIR / "resshift_x4"
#: Default tile side in low-resolution pixels (output 4x larger) and overlap.
DEFAULT_TILE, DEFAULT_OVERLAP = 128, 16
DEFAULT_COLOR_FIX = "adain"


@dataclass
class RunInfo:
    """What the last call did: network evaluations (all tiles), tiles, seconds."""

    network_evaluations: int = 0
    tiles: int = 0
    seconds: float = 0.0


class SuperResolutionPipeline:
    """x4 super-resolution. Holds a one-step student and/or the ResShift teacher.

    Args:
        teacher: the ResShift denoiser (``--steps N``), or None.
        student: the one-step LoRA student (``--one-step``), or None.
        scale: upscaling factor the models were trained for.
        device: where the models run.
    """

    def __init__(self, teacher=None, student: Optional[OneStepStudent] = None, scale: int = 4,
                 device: torch.device | str = "cpu"):
        if teacher is None and student is None:
            raise ValueError("a pipeline needs a teacher, a student, or both")
        self.teacher, self.student, self.scale = teacher, student, scale
        self.device = torch.device(device)
        self.last_run = RunInfo()
        core = (student.denoiser if student is not None else teacher)
        self.grid_multiple = core.unshuffle * 2 ** (len(core.backbone.config.block_out_channels) - 1)

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, path: Optional[str | os.PathLike] = None, device: str = "auto",
                        one_step: Optional[bool] = None) -> "SuperResolutionPipeline":
        """Load local weights (never downloads).

        ``path`` None: the shipped default (student and teacher). ``path`` may be one model
        folder (student or teacher) or a folder holding ``onestep_x4`` / ``resshift_x4``.
        """
        dev = device_from_string(device) if isinstance(device, str) else torch.device(device)
        root = Path(path) if path is not None else WEIGHTS_DIR
        if not root.exists():
            raise InputError(f"{root}: weights folder not found")
        folders = [root] if (root / "model.json").is_file() else [root / "onestep_x4", root / "resshift_x4"]
        teacher = student = None
        scale = 4
        for folder in folders:
            if not (folder / "model.json").is_file():
                continue
            meta = read_meta(folder)
            scale = int(meta["extra"].get("scale", 4))
            if "student" in meta["extra"]:
                student, _ = OneStepStudent.from_pretrained(folder, device=dev)
            else:
                teacher, _ = load_denoiser(folder, device=dev)
        if teacher is None and student is None:
            raise InputError(f"{root}: no model found (expected model.json, or onestep_x4/ and resshift_x4/)")
        return cls(teacher, student, scale=scale, device=dev)

    # ----------------------------------------------------------------- core
    def _pad(self, lr: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Pad ``(B,3,h,w)`` at bottom/right to the backbone's grid multiple (in input pixels)."""
        return pad_to_multiple(lr, max(1, self.grid_multiple // self.scale))

    def _restore_tile(self, lr: torch.Tensor, one_step: bool, steps: Optional[int], deterministic: bool,
                      pix: float, detail: float, generator: torch.Generator) -> torch.Tensor:
        """LR tile in [0,1] -> HR tile in [0,1] (model state lives in [-1,1])."""
        padded, (h, w) = self._pad(lr)
        cond = padded * 2 - 1
        y = bicubic_up(padded, self.scale).clamp(0, 1) * 2 - 1
        if one_step:
            x0, nfe = self.student(y, cond, pix=pix, detail=detail)
        else:
            teacher = self.teacher
            x0, nfe = sample(lambda x_t, t: teacher(x_t, t, y, cond), teacher.process, y, num_inference_steps=steps,
                             deterministic=deterministic, generator=generator)
        self.last_run.network_evaluations += nfe
        return ((x0 + 1) / 2)[..., : h * self.scale, : w * self.scale].clamp(0, 1)

    def num_tiles(self, height: int, width: int, tile: Optional[int] = None, overlap: Optional[int] = None) -> int:
        tile, overlap = self._tile_settings(height, width, tile, overlap)
        return count_tiles(height, width, tile, overlap)

    @staticmethod
    def _tile_settings(h: int, w: int, tile: Optional[int], overlap: Optional[int]):
        tile = DEFAULT_TILE if tile is None else int(tile)
        if tile < 0:
            raise InputError("--tile must be >= 0 (0 disables tiling)")
        overlap = min(DEFAULT_OVERLAP, tile // 4) if overlap is None else int(overlap)
        if tile and not 0 <= overlap < tile:
            raise InputError(f"--tile-overlap must be in [0, tile), got {overlap} for tile {tile}")
        return (tile or None), overlap

    @torch.no_grad()
    def upscale_planes(self, planes: Planes, one_step: bool = True, steps: Optional[int] = None,
                       deterministic: bool = False, pix: float = 1.0, detail: float = 1.0,
                       tile: Optional[int] = None, tile_overlap: Optional[int] = None,
                       color_fix_method: str = DEFAULT_COLOR_FIX, seed: int = 0,
                       on_tile: Optional[Callable[[], None]] = None) -> Planes:
        """The work behind :meth:`__call__` on :class:`Planes` (used by the CLI)."""
        import time

        start = time.perf_counter()
        self._check_mode(one_step, steps)
        if color_fix_method not in COLOR_FIXES:
            raise InputError(f"unknown --color-fix {color_fix_method!r}; choose from {', '.join(COLOR_FIXES)}")
        self.last_run = RunInfo()
        lr = planes.rgb[None].to(self.device)
        h, w = lr.shape[-2:]
        tile, overlap = self._tile_settings(h, w, tile, tile_overlap)
        self.last_run.tiles = count_tiles(h, w, tile, overlap)
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        fn = lambda t: self._restore_tile(t, one_step, steps, deterministic, pix, detail, generator)  # noqa: E731
        hr = tiled_apply(fn, lr, tile, overlap, scale=self.scale, progress=on_tile)
        hr = color_fix(hr, bicubic_up(lr, self.scale).clamp(0, 1), color_fix_method)
        alpha = None
        if planes.alpha is not None:
            alpha = bicubic_up(planes.alpha[None].to(self.device), self.scale).clamp(0, 1)[0].cpu()
        self.last_run.seconds = time.perf_counter() - start
        return planes.with_pixels(hr[0].float().cpu(), alpha)

    def _check_mode(self, one_step: bool, steps: Optional[int]) -> None:
        if one_step and self.student is None:
            raise InputError("these weights have no one-step student; use --steps N (teacher)")
        if not one_step:
            if self.teacher is None:
                raise InputError("these weights have no teacher; use --one-step")
            T = len(self.teacher.process)
            if steps is not None and not 1 <= int(steps) <= T:
                raise InputError(f"--steps must be in 1..{T} (the teacher was trained with T={T})")

    def __call__(self, image, one_step: bool = True, steps: Optional[int] = None, deterministic: bool = False,
                 pix: float = 1.0, detail: float = 1.0, tile: Optional[int] = None,
                 tile_overlap: Optional[int] = None, color_fix: str = DEFAULT_COLOR_FIX, seed: int = 0):
        """Super-resolve ``image`` (PIL, numpy ``(H,W[,C])`` or torch ``([B,]C,H,W)``), same kind out.

        ``one_step=True`` uses the student (1 evaluation per tile at pix=detail=1);
        ``one_step=False`` runs the teacher for ``steps`` (default T) steps, stochastic unless
        ``deterministic``. ``tile``/``tile_overlap`` are in input pixels (``tile=0``: no tiling).
        """
        planes, kind, info = from_user(image)
        out = self.upscale_planes(planes, one_step, steps, deterministic, pix, detail, tile, tile_overlap,
                                  color_fix, seed)
        return to_user(out, kind, info)

    def bicubic(self, image):
        """Plain bicubic x``scale`` upsampling of ``image`` (the reference baseline)."""
        planes, kind, info = from_user(image)
        rgb = bicubic_up(planes.rgb[None], self.scale).clamp(0, 1)[0]
        alpha = None if planes.alpha is None else bicubic_up(planes.alpha[None], self.scale).clamp(0, 1)[0]
        return to_user(planes.with_pixels(rgb, alpha), kind, info)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(B,C,h,w)`` at bottom/right so both sides divide ``multiple``; return the original size."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if (ph < h and pw < w) else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)

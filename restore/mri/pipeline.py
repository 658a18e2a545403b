"""``MRIReconstructionPipeline``: undersampled k-space in, a reconstruction that keeps the data out.

    from restore.mri.pipeline import MRIReconstructionPipeline
    pipe = MRIReconstructionPipeline.from_pretrained()          # the shipped ResShift model
    image = pipe(kspace, mask)                                   # one slice: (H, W) single-coil
    image, std = pipe(kspace, mask, coil_maps=maps, samples=8)   # (C, H, W) with SENSE maps
    image = pipe(kspace, mask)                                   # (C, H, W), maps by ESPIRiT

Per slice (:meth:`MRIReconstructionPipeline.reconstruct`):

1. multi-coil k-space without maps gets ESPIRiT maps (:func:`restore.mri.coils.espirit_maps`);
   the measurement ``A = M F S`` (:func:`restore.mri.fourier.cartesian_measurement`) and the
   zero-filled image ``A^H y``; everything is divided by ``s = max |A^H y|`` (the training
   normalisation, :func:`restore.mri.fourier.slice_scale`), so any scanner scale works and the result
   is multiplied back by ``s``;
2. the ResShift sampler runs from ``y = A^H y / s`` with the measured-column plane as conditioning,
   the image zero-padded to the backbone's grid multiple inside the denoiser only;
3. data consistency (:class:`shared.data_consistency.DataConsistency`) is applied to the x0
   estimate at every step: ``hard`` keeps the measured k-space exactly (single-coil), ``soft``
   trusts it with weight ``trust``; ``end`` applies it once to the final image (the ablation);
4. ``samples`` draws give the mean magnitude and its per-pixel standard deviation.

``from_pretrained()`` loads the shipped model (``restore/mri/weights/resshift``, its model card beside
it); ``from_pretrained(folder)`` any model folder written by training.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from shared.checkpoints import load_denoiser, read_meta
from shared.complex import channels_to_complex
from shared.data_consistency import DataConsistency, LinearMeasurement
from shared.files import InputError, device_from_string
from shared.pipeline import Pipeline, RunInfo, as_dtype, grid_multiple, model_folders
from shared.samplers import sample

from .coils import espirit_maps
from .fourier import cartesian_measurement, slice_scale
from .options import DC_MODES

#: The shipped models (``experiments/restore/mri_resshift.yaml``, ``mri_student.yaml``; model cards inside).
WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_FOLDERS = ("resshift", "onestep")


class MRIReconstructionPipeline(Pipeline):
    """Reconstruct undersampled Cartesian k-space with a ResShift model and data consistency."""

    def __init__(self, model=None, device: torch.device | str = "cpu", torch_dtype=torch.float32, student=None):
        if model is None and student is None:
            raise ValueError("a pipeline needs a model, a one-step student, or both")
        self.model, self.student = model, student
        denoisers = [model] if student is None else [model, student.denoiser]
        self.grid_multiple = grid_multiple([d for d in denoisers if d is not None])
        self.last_run = RunInfo()
        self.to(device, torch_dtype)

    def modules(self):
        return iter([m for m in (self.model, self.student) if m is not None])

    @classmethod
    def from_pretrained(cls, path: Optional[str | os.PathLike] = None, device: str = "auto",
                        torch_dtype=torch.float32) -> "MRIReconstructionPipeline":
        """Load local weights, never downloads: ``path`` None is the shipped models (ResShift and, when
        present, its one-step student); else a model folder written by training (``export_dir``), or a
        folder holding ``resshift`` / ``onestep``."""
        from shared.student import OneStepStudent

        dev = device_from_string(device)
        model = student = None
        for folder in model_folders(WEIGHTS_DIR if path is None else path, MODEL_FOLDERS):
            if "student" in read_meta(folder)["extra"]:
                student, _ = OneStepStudent.from_pretrained(folder, device=dev)
            else:
                model, _ = load_denoiser(folder, device=dev)
        return cls(model, dev, as_dtype(torch_dtype), student=student)

    def check_mode(self, one_step: bool) -> None:
        """:class:`InputError` when the requested model (one-step student or ResShift) is not loaded."""
        if one_step and self.student is None:
            raise InputError("no one-step student in these weights: drop --one-step (one_step=False)")
        if not one_step and self.model is None:
            raise InputError("these weights hold only the one-step student: use --one-step (one_step=True)")

    # ----------------------------------------------------------------- inputs
    @staticmethod
    def _inputs(kspace, mask, coil_maps) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """``(kspace (1, [C,] H, W), mask (W,), maps (1, C, H, W) or None)`` as complex64/float32 tensors."""
        k = torch.as_tensor(np.asarray(kspace) if not isinstance(kspace, torch.Tensor) else kspace)
        if not k.is_complex():
            raise InputError(f"kspace must be complex, got {k.dtype}")
        if k.ndim not in (2, 3):
            raise InputError(f"kspace must be one slice, (H, W) or (coils, H, W), got shape {tuple(k.shape)}")
        if not torch.isfinite(torch.view_as_real(k)).all():
            raise InputError("kspace contains NaN or infinite values")
        k = k.to(torch.complex64)
        if k.ndim == 2 and coil_maps is not None:
            raise InputError("single-coil kspace (H, W) takes no coil_maps")
        if mask is None:
            mask = (k != 0).reshape(-1, k.shape[-1]).any(0)
        mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).reshape(-1)
        if mask.shape[0] != k.shape[-1]:
            raise InputError(f"mask has {mask.shape[0]} entries but kspace has {k.shape[-1]} columns")
        mask = (mask != 0).float()
        if not mask.any():
            raise InputError("no measured k-space column")
        maps = None
        if k.ndim == 3 and coil_maps is None:
            try:
                coil_maps = espirit_maps((k * mask).numpy(), mask.numpy())
            except ImportError as err:
                raise InputError(str(err)) from None
        if coil_maps is not None:
            maps = torch.as_tensor(np.asarray(coil_maps) if not isinstance(coil_maps, torch.Tensor) else coil_maps)
            if tuple(maps.shape) != tuple(k.shape):
                raise InputError(f"coil_maps {tuple(maps.shape)} must match kspace {tuple(k.shape)}")
            maps = maps.to(torch.complex64)[None]
        return k[None], mask, maps

    # ----------------------------------------------------------------- work
    def _padding(self, y: torch.Tensor) -> tuple[int, int, int, int]:
        h, w = y.shape[-2:]
        m = self.grid_multiple
        return (0, (-w) % m, 0, (-h) % m)

    def _denoise(self, y: torch.Tensor, cond: torch.Tensor):
        """The model as ``denoise(x_t, t)``, zero-padded to the grid multiple and cropped back."""
        h, w = y.shape[-2:]
        pad = self._padding(y)
        y_p, cond_p = F.pad(y, pad).to(self.dtype), F.pad(cond, pad).to(self.dtype)

        def denoise(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.model(F.pad(x_t, pad).to(self.dtype), t, y_p, cond_p).float()[..., :h, :w]

        return denoise

    def _one_step(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The student's x0 estimate ``f(y)`` (one network evaluation), padded like :meth:`_denoise`."""
        h, w = y.shape[-2:]
        pad = self._padding(y)
        x0, _ = self.student(F.pad(y, pad).to(self.dtype), F.pad(cond, pad).to(self.dtype))
        return x0.float()[..., :h, :w]

    @torch.no_grad()
    def reconstruct(self, kspace, mask=None, coil_maps=None, *, num_inference_steps: Optional[int] = None,
                    samples: int = 1, dc: str = "hard", trust: float = 1.0, one_step: bool = False,
                    generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(complex images (samples, H, W), mean magnitude (H, W), std (H, W))`` at the input's scale.

        ``one_step``: the student's single evaluation, then data consistency (``dc`` hard/soft/end: the
        same, one projection; deterministic, so ``samples`` > 1 repeats it and the std is 0)."""
        import time

        start = time.perf_counter()
        if dc not in DC_MODES:
            raise InputError(f"unknown dc {dc!r}; choose from {', '.join(DC_MODES)}")
        if int(samples) < 1:
            raise InputError(f"samples must be >= 1, got {samples}")
        self.check_mode(one_step)
        k, mask, maps = self._inputs(kspace, mask, coil_maps)
        k, mask = k.to(self.device), mask.to(self.device)
        maps = None if maps is None else maps.to(self.device)
        zero_filled = cartesian_measurement(k, mask, maps)
        s = slice_scale(channels_to_complex(zero_filled.adjoint(zero_filled.measured)))
        measurement = cartesian_measurement(k / s, mask, maps)
        y = measurement.adjoint(measurement.measured)
        cond = mask.reshape(1, 1, 1, -1).expand(1, 1, *y.shape[-2:])
        dc_step = None if dc in ("none", "end") else DataConsistency(measurement, trust=trust if dc == "soft" else None)
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(0)
        images, nfe = [], 0
        if one_step:
            x0 = self._one_step(y, cond)
            if dc != "none":
                x0 = DataConsistency(measurement, trust=trust if dc == "soft" else None).project(x0)
            images, nfe = [channels_to_complex(x0)[0, 0] * s] * int(samples), 1
        denoise = None if one_step else self._denoise(y, cond)
        for _ in range(0 if one_step else int(samples)):
            x0, n = sample(denoise, self.model.process, y, num_inference_steps=num_inference_steps,
                           generator=generator, callback=dc_step)
            if dc == "end":
                x0 = DataConsistency(measurement).project(x0)
            images.append(channels_to_complex(x0)[0, 0] * s)
            nfe += n
        images = torch.stack(images)
        magnitudes = images.abs()
        std = magnitudes.std(0, unbiased=False) if len(images) > 1 else torch.zeros_like(magnitudes[0])
        what = "one-step student" if one_step else (
            f"{type(self.model.process).__name__}, {num_inference_steps or len(self.model.process)} steps")
        self.last_run = RunInfo(nfe, 1, time.perf_counter() - start, 1 if maps is None else maps.shape[1],
                                f"{what}, dc {dc}")
        return images, magnitudes.mean(0), std

    def measurement(self, kspace, mask=None, coil_maps=None) -> LinearMeasurement:
        """The measurement of ``kspace`` as :meth:`reconstruct` sees it (at the input's scale)."""
        k, mask, maps = self._inputs(kspace, mask, coil_maps)
        return cartesian_measurement(k, mask, maps)

    def __call__(self, kspace, mask=None, coil_maps=None, *, num_inference_steps: Optional[int] = None,
                 samples: int = 1, dc: str = "hard", trust: float = 1.0, one_step: bool = False,
                 generator: Optional[torch.Generator] = None):
        """The magnitude image ``(H, W)`` float32 (numpy for numpy input, torch for torch), or
        ``(image, std)`` when ``samples > 1``. ``mask`` defaults to the non-zero columns."""
        _, mean, std = self.reconstruct(kspace, mask, coil_maps, num_inference_steps=num_inference_steps,
                                        samples=samples, dc=dc, trust=trust, one_step=one_step,
                                        generator=generator)
        as_user = (lambda t: t.cpu()) if isinstance(kspace, torch.Tensor) else (lambda t: t.cpu().numpy())
        return (as_user(mean), as_user(std)) if samples > 1 else as_user(mean)

"""One-step student: a frozen teacher denoiser plus LoRA adapters, one evaluation per sample.

The student evaluates the teacher's denoiser once at the top of the process's grid (``t_s = T-1``
for ResShift, ``t = 1`` for a continuous SDE)
on the noise-free prior mean ``x_T = y`` (OSEDiff/PiSA-SR feed the degraded input directly),
so the output is a deterministic function of the degraded input::

    x0 = blend(f_pix(y), f_both(y); pix, detail)     (see shared.lora.blend_outputs)
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional, Sequence

import torch
from torch import nn

from . import lora
from .checkpoints import load_adapter_state, load_denoiser, save_denoiser
from .denoiser import ConditionalDenoiser
from .protocol import grid_of


class OneStepStudent(nn.Module):
    """A denoiser whose backbone carries LoRA adapters, evaluated once from ``x_T = y``."""

    def __init__(self, denoiser: ConditionalDenoiser, specs: Sequence[lora.AdapterSpec],
                 timestep: Optional[float] = None):
        super().__init__()
        self.denoiser = denoiser
        self.specs = {s.name: s for s in specs}
        for spec in specs:
            lora.add_adapter(self.denoiser.backbone, spec)
        grid = grid_of(denoiser.process)
        self.time_dtype = grid.dtype
        self.timestep = grid[0].item() if timestep is None else timestep
        self._merged: tuple[str, ...] = ()

    @classmethod
    def from_teacher(cls, teacher: ConditionalDenoiser, specs: Sequence[lora.AdapterSpec]) -> "OneStepStudent":
        """A fresh student: a deep copy of the teacher with zero-initialised adapters."""
        return cls(copy.deepcopy(teacher), specs)

    @property
    def adapter_names(self) -> list[str]:
        return list(self.specs)

    # ----------------------------------------------------------------- evaluation
    def evaluate(self, y: torch.Tensor, cond: Optional[torch.Tensor], adapters: Sequence[str]) -> torch.Tensor:
        """One network evaluation with exactly ``adapters`` active (merged if already merged)."""
        backbone = self.denoiser.backbone
        adapters = tuple(adapters)
        if self._merged and self._merged != adapters:
            lora.unmerge_adapters(backbone)
            self._merged = ()
        if not self._merged:
            lora.set_active_adapters(backbone, adapters)
        t = torch.full((y.shape[0],), self.timestep, device=y.device, dtype=self.time_dtype)
        return self.denoiser(y, t, y, cond)

    def merge(self, adapters: Optional[Sequence[str]] = None) -> None:
        """Fold ``adapters`` (default: all) into the base weights for single-evaluation inference."""
        adapters = tuple(adapters or self.adapter_names)
        if self._merged == adapters:
            return
        if self._merged:
            lora.unmerge_adapters(self.denoiser.backbone)
        lora.set_active_adapters(self.denoiser.backbone, adapters)
        lora.merge_adapters(self.denoiser.backbone, adapters)
        self._merged = adapters

    def unmerge(self) -> None:
        if self._merged:
            lora.unmerge_adapters(self.denoiser.backbone)
            self._merged = ()

    @torch.no_grad()
    def forward(self, y: torch.Tensor, cond: Optional[torch.Tensor] = None, pix: float = 1.0,
                detail: float = 1.0) -> tuple[torch.Tensor, int]:
        """Return ``(x0, network_evaluations)`` for blend scales ``pix`` and ``detail``.

        ``detail`` 0 (or no detail adapter) and ``detail`` = ``pix`` = 1 are one evaluation with the
        adapters merged into the base weights; any other blend costs two."""
        names = self.adapter_names
        base = [n for n in names if n != "detail"]
        if "detail" not in names or detail == 0.0:
            return pix * self._merged_evaluation(y, cond, base), 1
        if pix == 1.0 and detail == 1.0:
            return self._merged_evaluation(y, cond, names), 1
        f_pix = self.evaluate(y, cond, base)
        f_both = self.evaluate(y, cond, names)
        return lora.blend_outputs(f_pix, f_both, pix, detail), 2

    def _merged_evaluation(self, y: torch.Tensor, cond: Optional[torch.Tensor],
                           adapters: Sequence[str]) -> torch.Tensor:
        """One evaluation with ``adapters`` folded into the base weights (as fast as the bare backbone)."""
        if adapters and self._merged != tuple(adapters):
            self.merge(adapters)
        return self.evaluate(y, cond, adapters)

    # ----------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | os.PathLike, extra: Optional[dict] = None) -> Path:
        """Base backbone (float16) + one safetensors file per adapter + JSON specs."""
        self.unmerge()
        base = copy.deepcopy(self.denoiser)
        adapters = {n: lora.adapter_state_dict(self.denoiser.backbone, n) for n in self.adapter_names}
        base.backbone = _strip_lora(base.backbone)
        meta = dict(extra or {})
        meta["student"] = {"timestep": self.timestep, "adapters": [s.to_dict() for s in self.specs.values()]}
        return save_denoiser(base, directory, extra=meta, adapters=adapters)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device="cpu") -> tuple["OneStepStudent", dict]:
        """Load a student folder written by :meth:`save_pretrained`."""
        denoiser, meta = load_denoiser(directory, device="cpu")
        info = meta["extra"].get("student")
        if info is None:
            raise ValueError(f"{directory}: not a one-step student (no adapters recorded)")
        specs = [lora.AdapterSpec(**s) for s in info["adapters"]]
        student = cls(denoiser, specs, timestep=info["timestep"])
        for spec in specs:
            lora.load_adapter_state_dict(student.denoiser.backbone, spec.name, load_adapter_state(directory, spec.name))
        return student.to(device).eval(), meta


def _strip_lora(backbone: nn.Module) -> nn.Module:
    """The base model without any LoRA layers (weights unchanged)."""
    for name, module in list(backbone.named_modules()):
        if isinstance(module, lora.BaseTunerLayer):
            parent_name, _, child = name.rpartition(".")
            parent = backbone.get_submodule(parent_name) if parent_name else backbone
            setattr(parent, child, module.get_base_layer())
    return backbone

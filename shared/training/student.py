"""One-step LoRA students on a frozen teacher (PiSA-SR's pixel then detail adapters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch.utilities import rank_zero_only

from .. import lora
from ..checkpoints import load_denoiser
from ..protocol import grid_of
from ..samplers import sample_deterministic
from ..student import OneStepStudent
from .base import ExportingModule, import_callable


class OneStepStudentModule(ExportingModule):
    """Trains a LoRA adapter of a one-step student on a frozen residual-shift teacher.

    ``stage="pixel"``: adapter ``pixel``; loss ``|f(y) - x0|^2 + w_distill |f(y) - x_det|^2`` where
    ``x_det`` is the teacher's deterministic (SinSR) ``teacher_steps``-step endpoint from ``x_T = y``.

    ``stage="detail"``: adds adapter ``detail`` on top of the trained, frozen ``pixel`` adapter
    (loaded from ``init_student``); loss ``w_l2 |f - x0|^2 + w_perceptual * perceptual_loss(f, x0) +
    w_score |f - sg(D_teacher(x_t))|^2`` with ``x_t`` the student output re-noised to a random
    low-noise timestep (one of the grid's ``score_max_t`` lowest): score distillation toward the teacher's data manifold.
    ``perceptual_loss`` is the vertical's (e.g. ``restore.sr.losses.frequency_loss``), or none.
    ``cosine_decay``: the learning rate falls to zero at the trainer's ``max_steps`` (the student keeps no EMA).
    """

    def __init__(
        self,
        teacher: str,
        stage: str = "pixel",
        init_student: Optional[str] = None,
        rank: int = 16,
        alpha: float = 16.0,
        target_modules: Optional[list[str]] = None,
        teacher_steps: Optional[int] = None,
        w_distill: float = 1.0,
        w_l2: float = 1.0,
        perceptual_loss: Optional[str] = None,
        w_perceptual: float = 0.05,
        w_score: float = 0.1,
        score_max_t: int = 2,
        lr: float = 5e-4,
        warmup_steps: int = 100,
        cosine_decay: bool = False,
        export_dir: Optional[str] = None,
        export_every_n_steps: int = 500,
        extra: Optional[dict[str, Any]] = None,
        val_metrics: Optional[dict[str, str]] = None,
    ):
        super().__init__()

        if stage not in ("pixel", "detail"):
            raise ValueError("stage must be 'pixel' or 'detail'")
        self.save_hyperparameters()
        self.teacher, meta = load_denoiser(teacher)
        self.teacher.requires_grad_(False)
        self.teacher_extra = meta["extra"]
        targets = list(target_modules or lora.DEFAULT_TARGETS)
        specs = [lora.AdapterSpec("pixel", rank, alpha, targets)]
        if stage == "detail":
            if not init_student:
                raise ValueError("stage 'detail' needs init_student (the trained pixel student)")
            pixel_student, _ = OneStepStudent.from_pretrained(init_student)
            specs = [pixel_student.specs["pixel"], lora.AdapterSpec("detail", rank, alpha, targets)]
        self.student = OneStepStudent.from_teacher(self.teacher, specs).train()
        if stage == "detail":
            lora.load_adapter_state_dict(self.student.denoiser.backbone, "pixel",
                                         lora.adapter_state_dict(pixel_student.denoiser.backbone, "pixel"))
        self.active = [s.name for s in specs]
        self.trainable = lora.set_trainable(self.student.denoiser.backbone, [stage])

    def forward_student(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.student.evaluate(batch["y"], batch.get("cond"), self.active)

    @torch.no_grad()
    def teacher_endpoint(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Deterministic teacher sample from ``x_T = y`` (the distillation target)."""
        y, cond = batch["y"], batch.get("cond")
        x, _ = sample_deterministic(lambda x_t, t: self.teacher(x_t, t, y, cond), self.teacher.process, y,
                                    num_inference_steps=self.hparams.teacher_steps, x_start=y.clone())
        return x

    def low_noise_timesteps(self) -> torch.Tensor:
        """The ``score_max_t`` lowest timesteps of the teacher's grid, ascending (ResShift: ``0, 1``)."""
        return grid_of(self.teacher.process).flip(0)[: self.hparams.score_max_t].cpu()

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        x0 = batch["x0"]
        out = self.forward_student(batch)
        logs = {}
        if hp.stage == "pixel":
            logs["l2"] = torch.mean((out - x0) ** 2)
            loss = logs["l2"]
            if hp.w_distill:
                logs["distill"] = torch.mean((out - self.teacher_endpoint(batch)) ** 2)
                loss = loss + hp.w_distill * logs["distill"]
        else:
            logs["l2"] = torch.mean((out - x0) ** 2)
            loss = hp.w_l2 * logs["l2"]
            if hp.perceptual_loss is not None and hp.w_perceptual:
                logs["perceptual"] = import_callable(hp.perceptual_loss)(out, x0)
                loss = loss + hp.w_perceptual * logs["perceptual"]
            if hp.w_score:
                process = self.teacher.process
                t = self.low_noise_timesteps()[torch.randint(0, hp.score_max_t, (x0.shape[0],))].to(x0.device)
                x_t = process.add_noise(out, torch.randn_like(out), t, y=batch["y"])
                with torch.no_grad():
                    target = self.teacher(x_t.detach(), t, batch["y"], batch.get("cond"))
                logs["score"] = torch.mean((out - target) ** 2)
                loss = loss + hp.w_score * logs["score"]
        bs = x0.shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for k, v in logs.items():
            self.log(f"train/{k}", v, batch_size=bs)
        return loss

    @rank_zero_only
    def export(self, directory: Optional[str] = None) -> Path:
        """Write the student (base weights + adapters) as safetensors + JSON."""
        extra = dict(self.teacher_extra)
        extra["training"] = {"global_step": int(self.global_step), "stage": self.hparams.stage}
        return self.student.save_pretrained(directory or self.hparams.export_dir, extra=extra)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self.log_metrics(self.forward_student(batch), batch["x0"])

    def configure_optimizers(self):
        return self.warmup_adamw(self.trainable)

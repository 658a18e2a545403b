"""Lightning training of conditional residual-shift denoisers (any vertical).

Batches are dicts with ``x0`` (clean target), ``y`` (degraded input on the target grid) and
optionally ``cond`` (extra conditioning on the backbone grid). Vertical data modules produce
them; this module knows nothing about images, audio or fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics.functional.image import peak_signal_noise_ratio

from .checkpoints import BACKBONES, PROCESSES, save_denoiser
from .denoiser import ConditionalDenoiser, predictive_conditioning
from .samplers import sample, sample_deterministic


def build_denoiser(
    backbone: dict[str, Any], process: dict[str, Any], unshuffle: int = 1, skip: float = 1.0,
    concat_y: bool = False,
) -> ConditionalDenoiser:
    """Build a denoiser from plain dicts: ``{"class": name, **kwargs}`` for backbone and process."""
    backbone = dict(backbone)
    process = dict(process)
    backbone_cls = BACKBONES[backbone.pop("class", "UNet2DModel")]
    process_cls = PROCESSES[process.pop("class", "ResShiftScheduler")]
    return ConditionalDenoiser(backbone_cls(**backbone), process_cls(**process), unshuffle=unshuffle, skip=skip,
                              concat_y=concat_y)


class _ExportingModule(pl.LightningModule):
    """Shared plumbing: periodic ``export()`` to ``hparams.export_dir``, warm-up AdamW, PSNR logging."""

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        step = self.global_step
        if self.hparams.export_dir and step > 0 and step % self.hparams.export_every_n_steps == 0:
            self.export()

    def on_train_end(self) -> None:
        if self.hparams.export_dir:
            self.export()

    def export(self, directory: Optional[str] = None) -> Path:  # pragma: no cover - abstract
        raise NotImplementedError

    def warmup_adamw(self, params, weight_decay: float = 0.0):
        """AdamW at ``hparams.lr`` with a linear warm-up over ``hparams.warmup_steps``, then constant."""
        opt = torch.optim.AdamW(params, lr=self.hparams.lr, weight_decay=weight_decay)
        warmup = max(1, self.hparams.warmup_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def log_psnr(self, name: str, estimate: torch.Tensor, target: torch.Tensor, **kwargs) -> None:
        """PSNR of states in [-1, 1] mapped to [0, 1]."""
        to01 = lambda v: ((v + 1) / 2).clamp(0, 1)  # noqa: E731
        self.log(name, peak_signal_noise_ratio(to01(estimate), to01(target), data_range=1.0),
                 batch_size=target.shape[0], sync_dist=True, **kwargs)


class ConditionalDiffusionModule(_ExportingModule):
    """Trains a conditional denoiser ``f(x_t, t | y, cond)`` with its process's own loss
    (``process.training_loss``: x0-prediction for ResShift, eps-prediction for the Gaussian DDPM
    baseline) and keeps an EMA copy for validation and export.

    Args:
        backbone: backbone class name (``"class"``) and constructor arguments.
        process: process class name (``"class"``) and constructor arguments.
        unshuffle, skip, concat_y: see :class:`shared.denoiser.ConditionalDenoiser`.
        lr, weight_decay, warmup_steps: AdamW with linear warm-up then constant rate.
        ema_decay: decay of the exponential moving average used for validation and export.
        ema_start_step: until this step the average just copies the weights, so the random
            initialisation does not linger in it (0.999 ** 2000 is still 13 %).
        val_steps, val_deterministic: sampler used for the validation PSNR.
        predictor: folder of a trained predictive model (StoRM): the process then runs toward its
            estimate ``D(y)`` and the raw ``y`` joins the conditioning
            (:func:`shared.denoiser.predictive_conditioning`).
        export_dir: where the EMA model is written as safetensors + JSON (``save_pretrained``),
            every ``export_every_n_steps`` optimizer steps and at the end of training.
        extra: free-form JSON stored with the exported model (task settings, provenance).
    """

    def __init__(
        self,
        backbone: dict[str, Any],
        process: dict[str, Any],
        unshuffle: int = 1,
        skip: float = 1.0,
        concat_y: bool = False,
        lr: float = 2e-4,
        weight_decay: float = 0.0,
        warmup_steps: int = 500,
        ema_decay: float = 0.999,
        ema_start_step: int = 0,
        val_steps: Optional[int] = None,
        val_deterministic: bool = False,
        export_dir: Optional[str] = None,
        export_every_n_steps: int = 1000,
        extra: Optional[dict[str, Any]] = None,
        predictor: Optional[str] = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.denoiser = build_denoiser(backbone, process, unshuffle, skip, concat_y)
        self.predictor = None
        if predictor:
            from .checkpoints import load_denoiser

            self.predictor = load_denoiser(predictor)[0].requires_grad_(False)
        self.ema = AveragedModel(self.denoiser.backbone, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
        self.ema.requires_grad_(False)  # updated by averaging, never by gradients (DDP needs this)

    # ----------------------------------------------------------------- helpers
    def ema_denoiser(self) -> ConditionalDenoiser:
        """The denoiser with the EMA backbone (shares the process and settings)."""
        d = self.denoiser
        return ConditionalDenoiser(self.ema.module, d.process, d.unshuffle, d.skip, d.concat_y)

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(y, cond)`` for the process and network (StoRM: ``(D(y), y ++ cond)``)."""
        if self.predictor is None:
            return batch["y"], batch.get("cond")
        return predictive_conditioning(self.predictor, batch["y"], batch.get("cond"), self.denoiser.unshuffle)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        y, cond = self.inputs(batch)
        loss = self.denoiser.process.training_loss(lambda x_t, t: self.denoiser(x_t, t, y, cond), batch["x0"], y)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["x0"].shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.global_step <= self.hparams.ema_start_step:
            self.ema.module.load_state_dict(self.denoiser.backbone.state_dict())
        else:
            self.ema.update_parameters(self.denoiser.backbone)
        super().on_train_batch_end(outputs, batch, batch_idx)

    @rank_zero_only
    def export(self, directory: Optional[str] = None) -> Path:
        """Write the EMA model with ``save_pretrained`` semantics (safetensors + JSON)."""
        extra = dict(self.hparams.extra or {})
        extra["training"] = {"global_step": int(self.global_step)}
        return save_denoiser(self.ema_denoiser(), directory or self.hparams.export_dir, extra=extra)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        denoiser = self.ema_denoiser()
        y, cond = self.inputs(batch)
        generator = torch.Generator(device="cpu").manual_seed(batch_idx)
        x0, _ = sample(lambda x_t, t: denoiser(x_t, t, y, cond), denoiser.process, y,
                       num_inference_steps=self.hparams.val_steps, deterministic=self.hparams.val_deterministic,
                       generator=generator)
        self.log_psnr("val/psnr", x0, batch["x0"], prog_bar=True)
        self.log_psnr("val/psnr_input", batch["y"], batch["x0"])
        self.log("val/mse", torch.mean((x0 - batch["x0"]) ** 2), batch_size=x0.shape[0], sync_dist=True)

    def configure_optimizers(self):
        return self.warmup_adamw(self.denoiser.parameters(), self.hparams.weight_decay)


def frequency_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Log-amplitude spectrum distance ``mean |log(1+|F a|) - log(1+|F b|)|`` (2-D FFT per channel).

    The log compresses the dominant low frequencies, so fine detail (edges, texture) counts:
    a perceptual signal that needs no pretrained network.
    """
    fa = torch.fft.rfft2(a.float(), norm="ortho").abs()
    fb = torch.fft.rfft2(b.float(), norm="ortho").abs()
    return torch.mean(torch.abs(torch.log1p(fa) - torch.log1p(fb)))


class OneStepStudentModule(_ExportingModule):
    """Trains a LoRA adapter of a one-step student on a frozen residual-shift teacher.

    ``stage="pixel"``: adapter ``pixel``; loss ``|f(y) - x0|^2 + w_distill |f(y) - x_det|^2`` where
    ``x_det`` is the teacher's deterministic (SinSR) ``teacher_steps``-step endpoint from ``x_T = y``.

    ``stage="detail"``: adds adapter ``detail`` on top of the trained, frozen ``pixel`` adapter
    (loaded from ``init_student``); loss ``w_l2 |f - x0|^2 + w_freq * frequency_loss(f, x0) +
    w_score |f - sg(D_teacher(x_t))|^2`` with ``x_t`` the student output re-noised to a random
    low-noise timestep (< ``score_max_t``): score distillation toward the teacher's data manifold.
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
        w_freq: float = 0.05,
        w_score: float = 0.1,
        score_max_t: int = 2,
        lr: float = 5e-4,
        warmup_steps: int = 100,
        export_dir: Optional[str] = None,
        export_every_n_steps: int = 500,
        extra: Optional[dict[str, Any]] = None,
    ):
        super().__init__()
        from . import lora
        from .checkpoints import load_denoiser
        from .student import OneStepStudent

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
            logs["freq"] = frequency_loss(out, x0)
            loss = hp.w_l2 * logs["l2"] + hp.w_freq * logs["freq"]
            if hp.w_score:
                process = self.teacher.process
                t = torch.randint(0, hp.score_max_t, (x0.shape[0],), device=x0.device)
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
        self.log_psnr("val/psnr", self.forward_student(batch), batch["x0"], prog_bar=True)

    def configure_optimizers(self):
        return self.warmup_adamw(self.trainable)


class ConsistencyDistillationModule(_ExportingModule):
    """Distils a trained diffusion teacher into a consistency model (:mod:`shared.consistency`).

    The student starts as a copy of the teacher (all weights trainable); the target network is an
    EMA of the student (``target_decay``). Works for any process with ``path_coefficients`` and
    the x0 contract: the OU SDE (speech) and ResShift (images) alike.

    Args:
        teacher: folder of the trained teacher (``save_pretrained`` layout).
        num_intervals: ODE grid size ``N`` for continuous processes (ResShift uses its own T).
        sigma_data: ``s_d`` in the boundary coefficients.
        noise_level: the boundary's noise level, ``"effective"`` ``s_t/a_t`` or ``"marginal"`` ``s_t``
            (:func:`shared.consistency.noise_level`); stored with the exported model.
        target_decay: EMA decay of the target network.
        regression_weight: ``w`` of a one-step data term added to the distillation loss,
            ``L = L_CD + w |f(x_T, t_N) - x0|^2`` with ``x_T = process.prior_sample(y)``: the
            one-step output is pulled toward the clean target from the prior actually used at
            inference (CRP's idea, Lay et al. 2023, for one step). With an undertrained teacher the
            pure distillation target (its ODE endpoint) is worse than its own one-step estimate;
            this term keeps the one-step output anchored while the CD term shapes 2 and 4 steps.
    """

    def __init__(self, teacher: str, num_intervals: int = 30, sigma_data: float = 0.1, noise_level: str = "effective",
                 target_decay: float = 0.95, regression_weight: float = 0.0, lr: float = 2e-5, warmup_steps: int = 100,
                 val_steps: int = 1, export_dir: Optional[str] = None, export_every_n_steps: int = 500,
                 extra: Optional[dict[str, Any]] = None):
        super().__init__()
        import copy

        from .checkpoints import load_denoiser
        from .consistency import check_noise_level, consistency_grid

        check_noise_level(noise_level)   # fail before loading the teacher
        self.save_hyperparameters()
        self.teacher, meta = load_denoiser(teacher)
        self.teacher.requires_grad_(False)
        self.teacher_extra = meta["extra"]
        self.student = copy.deepcopy(self.teacher).train().requires_grad_(True)
        self.target = AveragedModel(self.student.backbone, multi_avg_fn=get_ema_multi_avg_fn(target_decay))
        self.target.requires_grad_(False)
        self.register_buffer("grid", consistency_grid(self.teacher.process, num_intervals), persistent=False)

    def _f(self, backbone, y, cond):
        from .consistency import consistency_function

        d = self.student
        net = ConditionalDenoiser(backbone, d.process, d.unshuffle, d.skip, d.concat_y)
        return consistency_function(lambda x, t: net(x, t, y, cond), d.process, self.hparams.sigma_data,
                                    self.grid[0], self.hparams.noise_level)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        from .consistency import distillation_loss

        y, cond = batch["y"], batch.get("cond")
        teacher = self.teacher
        teacher_x0 = lambda x, t: teacher(x, t, y, cond)  # noqa: E731
        student = self._f(self.student.backbone, y, cond)
        loss = distillation_loss(student, self._f(self.target.module, y, cond), teacher_x0, teacher.process,
                                 batch["x0"], y, self.grid)
        self.log("train/cd", loss, batch_size=y.shape[0])
        if self.hparams.regression_weight > 0:
            t_top = self.grid[-1].to(y).expand(y.shape[0])
            one_step = student(teacher.process.prior_sample(y), t_top)
            data = torch.mean((one_step - batch["x0"]) ** 2)
            self.log("train/one_step_mse", data, batch_size=y.shape[0])
            loss = loss + self.hparams.regression_weight * data
        self.log("train/loss", loss, prog_bar=True, batch_size=y.shape[0])
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.target.update_parameters(self.student.backbone)
        super().on_train_batch_end(outputs, batch, batch_idx)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        from .consistency import sample_consistency

        y, cond = batch["y"], batch.get("cond")
        generator = torch.Generator(device="cpu").manual_seed(batch_idx)
        x0, _ = sample_consistency(self._f(self.student.backbone, y, cond), self.student.process, y,
                                   num_inference_steps=self.hparams.val_steps, grid=self.grid, generator=generator)
        self.log("val/mse", torch.mean((x0 - batch["x0"]) ** 2), prog_bar=True, batch_size=y.shape[0],
                 sync_dist=True)

    @rank_zero_only
    def export(self, directory: Optional[str] = None) -> Path:
        """Write the student with its consistency settings in ``extra["consistency"]``."""
        extra = dict(self.teacher_extra)
        extra.update(self.hparams.extra or {})
        extra["consistency"] = {"sigma_data": self.hparams.sigma_data, "num_intervals": len(self.grid) - 1,
                                "noise_level": self.hparams.noise_level}
        extra["training"] = {"global_step": int(self.global_step)}
        return save_denoiser(self.student, directory or self.hparams.export_dir, extra=extra)

    def configure_optimizers(self):
        return self.warmup_adamw(self.student.backbone.parameters())

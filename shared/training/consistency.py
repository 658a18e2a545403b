"""Consistency distillation of a trained diffusion teacher (:mod:`shared.consistency`)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checkpoints import load_denoiser, save_denoiser
from ..consistency import (check_noise_level, consistency_function, consistency_grid, distillation_loss,
                           sample_consistency, sampler_times)
from ..denoiser import ConditionalDenoiser
from .base import ExportingModule


REGRESSION_TIMES = ("top", "all", "sampler")
SAMPLER_STEPS = (2, 4)   # the multistep settings whose later evaluations ``"sampler"`` trains


class ConsistencyDistillationModule(ExportingModule):
    """Distils a trained diffusion teacher into a consistency model (:mod:`shared.consistency`).

    The student starts as a copy of the teacher (all weights trainable), or as a trained consistency
    model (``student``: fine-tuning it on new data); the target network is an EMA of the student
    (``target_decay``). Works for any process with ``path_coefficients`` and
    the x0 contract: the OU SDE (speech) and ResShift (images) alike.

    Args:
        teacher: folder of the trained teacher (``save_pretrained`` layout).
        student: folder of a consistency model distilled from this teacher to start from (default: a copy
            of the teacher); its backbone must have the teacher's architecture.
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
        regression_times: where the data term applies: ``"top"`` (above) or ``"all"``, which adds the same
            term at a random grid time of the forward marginal, ``w |f(x_t, t_n) - x0|^2`` with
            ``x_t ~ q(x_t | x0, y)``, and averages the two. The multistep sampler's later evaluations
            (:func:`shared.consistency.sample_consistency` re-noises its estimate to lower grid times) are
            then pulled toward the data too, not only toward the teacher's ODE. ``"sampler"`` trains
            those evaluations on what they are actually given: ``x_t = add_noise(sg[f(x_T, t_N)], eps, t)``,
            the student's own one-step estimate (no gradient) re-noised to a time ``t`` where the 2- or
            4-step sampler evaluates next (:func:`shared.consistency.sampler_times`), and the term is
            ``w |f(x_t, t) - x0|^2``. A second evaluation then learns to correct the first one's errors
            instead of meeting inputs it never saw in training.
        sampler_stop: the multistep sampler's ``stop`` (:func:`shared.consistency.sampler_times`), used by
            ``"sampler"``, by validation and stored with the exported model for inference.
        inference_stop: the ``stop`` stored with the exported model instead (``None``: ``sampler_stop``). It
            changes only how the model is sampled, never its training, so a stage's weights stay reproducible
            when its sampler times are chosen after it was trained.
        cosine_decay: the learning rate falls to zero at the trainer's ``max_steps``
            (``lr_n = lr * (1 + cos(pi n / N)) / 2``): the exported student is the online network, with no
            EMA of its own, so a stage that anneals ends on settled weights instead of one point of a
            fluctuating trajectory.
    """

    def __init__(self, teacher: str, num_intervals: int = 30, sigma_data: float = 0.1, noise_level: str = "effective",
                 target_decay: float = 0.95, regression_weight: float = 0.0, lr: float = 2e-5, warmup_steps: int = 100,
                 val_steps: int = 1, export_dir: Optional[str] = None, export_every_n_steps: int = 500,
                 extra: Optional[dict[str, Any]] = None, val_metrics: Optional[dict[str, str]] = None,
                 student: Optional[str] = None, regression_times: str = "top", sampler_stop: int = 0,
                 cosine_decay: bool = False, inference_stop: Optional[int] = None):
        super().__init__()

        check_noise_level(noise_level)   # fail before loading the teacher
        if regression_times not in REGRESSION_TIMES:
            raise ValueError(f"regression_times must be one of {REGRESSION_TIMES}, got {regression_times!r}")
        self.save_hyperparameters()
        self.teacher, meta = load_denoiser(teacher)
        self.teacher.requires_grad_(False)
        self.teacher_extra = meta["extra"]
        self.student = copy.deepcopy(self.teacher).train().requires_grad_(True)
        if student is not None:
            trained, _ = load_denoiser(student)
            self.student.backbone.load_state_dict(trained.backbone.state_dict())
        self.target = AveragedModel(self.student.backbone, multi_avg_fn=get_ema_multi_avg_fn(target_decay))
        self.target.requires_grad_(False)
        self.register_buffer("grid", consistency_grid(self.teacher.process, num_intervals), persistent=False)
        later = torch.cat([sampler_times(self.grid, k, sampler_stop)[1:] for k in SAMPLER_STEPS])
        if inference_stop is not None:
            sampler_times(self.grid, 1, inference_stop)     # the same range check, before training starts
        self.register_buffer("sampler_grid", torch.unique(later), persistent=False)

    def _f(self, backbone, y, cond):
        d = self.student
        net = ConditionalDenoiser(backbone, d.process, d.unshuffle, d.skip, d.concat_y)
        return consistency_function(lambda x, t: net(x, t, y, cond), d.process, self.hparams.sigma_data,
                                    self.grid[0], self.hparams.noise_level)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        y, cond = batch["y"], batch.get("cond")
        teacher = self.teacher
        teacher_x0 = lambda x, t: teacher(x, t, y, cond)  # noqa: E731
        student = self._f(self.student.backbone, y, cond)
        loss = distillation_loss(student, self._f(self.target.module, y, cond), teacher_x0, teacher.process,
                                 batch["x0"], y, self.grid)
        self.log("train/cd", loss, batch_size=y.shape[0])
        if self.hparams.regression_weight > 0:
            data = self._data_term(student, teacher.process, batch["x0"], y)
            loss = loss + self.hparams.regression_weight * data
        self.log("train/loss", loss, prog_bar=True, batch_size=y.shape[0])
        return loss

    def _data_term(self, student, process, x0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``|f(x_T, t_N) - x0|^2`` from the prior; with ``regression_times`` ``"all"`` or ``"sampler"``
        averaged with ``|f(x_t, t) - x0|^2`` on the path term's ``x_t`` (see the class docstring)."""
        b = y.shape[0]
        one_step = student(process.prior_sample(y), self.grid[-1].to(y).expand(b))
        data = torch.mean((one_step - x0) ** 2)
        self.log("train/one_step_mse", data, batch_size=b)
        if self.hparams.regression_times != "top":
            x_t, t = self._path_input(process, one_step.detach(), x0, y)
            along = torch.mean((student(x_t, t) - x0) ** 2)
            self.log("train/path_mse", along, batch_size=b)
            data = 0.5 * (data + along)
        return data

    def _path_input(self, process, estimate: torch.Tensor, x0: torch.Tensor,
                    y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_t, t)`` for the path term: ``x0`` at a random inner grid time (``"all"``), or the one-step
        ``estimate`` at a random later time of the multistep sampler (``"sampler"``)."""
        b = y.shape[0]
        if self.hparams.regression_times == "all":
            t, start = self.grid[torch.randint(1, len(self.grid) - 1, (b,))], x0
        else:
            t, start = self.sampler_grid[torch.randint(0, len(self.sampler_grid), (b,))], estimate
        t = t.to(y)
        return process.add_noise(start, torch.randn_like(start), t, y=y), t

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.target.update_parameters(self.student.backbone)
        super().on_train_batch_end(outputs, batch, batch_idx)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        y, cond = batch["y"], batch.get("cond")
        generator = torch.Generator(device="cpu").manual_seed(batch_idx)
        x0, _ = sample_consistency(self._f(self.student.backbone, y, cond), self.student.process, y,
                                   num_inference_steps=self.hparams.val_steps, grid=self.grid,
                                   stop=self.hparams.sampler_stop, generator=generator)
        self.log_metrics(x0, batch["x0"])

    @property
    def export_stop(self) -> int:
        """The sampler ``stop`` written with the model: ``inference_stop``, else ``sampler_stop``."""
        stop = self.hparams.get("inference_stop")
        return self.hparams.sampler_stop if stop is None else stop

    @rank_zero_only
    def export(self, directory: Optional[str] = None) -> Path:
        """Write the student with its consistency settings in ``extra["consistency"]``."""
        extra = dict(self.teacher_extra)
        extra.update(self.export_extra())
        extra["consistency"] = {"sigma_data": self.hparams.sigma_data, "num_intervals": len(self.grid) - 1,
                                "noise_level": self.hparams.noise_level, "sampler_stop": self.export_stop}
        return save_denoiser(self.student, directory or self.hparams.export_dir, extra=extra)

    def configure_optimizers(self):
        return self.warmup_adamw(self.student.backbone.parameters())

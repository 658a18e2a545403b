"""Training a conditional denoiser with its process's own loss, an EMA copy, validation sampling."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..checkpoints import save_denoiser
from ..denoiser import ConditionalDenoiser, predictive_conditioning
from ..samplers import sample
from .base import ExportingModule, build_denoiser


class ConditionalDiffusionModule(ExportingModule):
    """Trains a conditional denoiser ``f(x_t, t | y, cond)`` with its process's own loss
    (``process.training_loss``: x0-prediction for ResShift, eps-prediction for the Gaussian DDPM
    baseline) and keeps an EMA copy for validation and export.

    Args:
        backbone: backbone class name (``"class"``) and constructor arguments.
        process: process class name (``"class"``) and constructor arguments.
        unshuffle, skip, concat_y: see :class:`shared.denoiser.ConditionalDenoiser`.
        lr, weight_decay, warmup_steps: AdamW with linear warm-up then constant rate.
        cosine_decay: after the warm-up the rate falls to zero at the trainer's ``max_steps``
            (``lr_n = lr * (1 + cos(pi n / N)) / 2``): an annealing stage that ends a constant-rate one.
        ema_decay: decay of the exponential moving average used for validation and export.
        ema_start_step: until this step the average just copies the weights, so the random
            initialisation does not linger in it (0.999 ** 2000 is still 13 %).
        val_steps, val_deterministic: sampler used in validation.
        val_metrics: validation metrics ``name -> metric(estimate, target)`` (import paths in configs,
            e.g. ``{psnr: restore.sr.metrics.psnr_state}``); ``val/mse`` is always logged.
        predictor: folder of a trained predictive model (StoRM): the process then runs toward its
            estimate ``D(y)`` and the raw ``y`` joins the conditioning
            (:func:`shared.denoiser.predictive_conditioning`).
        export_dir: where the EMA model is written as safetensors + JSON (``save_pretrained``),
            every ``export_every_n_steps`` optimizer steps and at the end of training.
        extra: free-form JSON stored with the exported model (task settings, provenance).
        zero_output: start from a zeroed output layer (:func:`shared.training.base.zero_output_layer`):
            with ``skip = 1`` the model begins as ``x0_hat = y``.
        x0_variance_every: every this many steps, estimate the EMA model's x0 error per timestep on the
            training batch (``process.x0_error``); each export writes the mean of the last
            :attr:`X0_ERROR_WINDOW` estimates into the process as ``x0_variance`` (Analytic-DPM's reverse
            variance, :class:`shared.processes.ResShiftScheduler`). 0: off.
        init_weights: folder of a trained model with this backbone to start from (fine-tuning it on new
            data), instead of a random initialisation. A diffusers UNet with fewer ``layers_per_block`` than
            the configured one is grown into it function-preservingly (:func:`shared.grow.deepen_unet`).
    """

    #: how many recent x0-error estimates an export averages
    X0_ERROR_WINDOW = 20

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
        cosine_decay: bool = False,
        ema_decay: float = 0.999,
        ema_start_step: int = 0,
        val_steps: Optional[int] = None,
        val_deterministic: bool = False,
        val_metrics: Optional[dict[str, str]] = None,
        export_dir: Optional[str] = None,
        export_every_n_steps: int = 1000,
        extra: Optional[dict[str, Any]] = None,
        predictor: Optional[str] = None,
        zero_output: bool = False,
        x0_variance_every: int = 0,
        init_weights: Optional[str] = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.denoiser = build_denoiser(backbone, process, unshuffle, skip, concat_y, zero_output)
        if init_weights:
            self._load_init_weights(init_weights)
        if x0_variance_every and not hasattr(self.denoiser.process, "x0_error"):
            raise ValueError(f"x0_variance_every: {type(self.denoiser.process).__name__} has no x0_error")
        self.x0_errors: deque[torch.Tensor] = deque(maxlen=self.X0_ERROR_WINDOW)
        self.predictor = None
        if predictor:
            from ..checkpoints import load_denoiser

            self.predictor = load_denoiser(predictor)[0].requires_grad_(False)
        self.ema = AveragedModel(self.denoiser.backbone, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
        self.ema.requires_grad_(False)  # updated by averaging, never by gradients (DDP needs this)

    # ----------------------------------------------------------------- helpers
    def _load_init_weights(self, folder: str) -> None:
        """Start from the backbone in ``folder``: the same architecture, or a shallower UNet to grow."""
        from ..checkpoints import load_denoiser

        source = load_denoiser(folder)[0].backbone
        target = self.denoiser.backbone
        if _layers_per_block(source) != _layers_per_block(target):
            from ..grow import deepen_unet

            deepen_unet(source, target)
        else:
            target.load_state_dict(source.state_dict())

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
        every = self.hparams.x0_variance_every
        if every and (self.global_step % every == 0 or not self.x0_errors):   # at least one estimate
            self.x0_errors.append(self.x0_error(batch))
        super().on_train_batch_end(outputs, batch, batch_idx)

    def x0_error(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The EMA model's x0 error per timestep on ``batch`` (``process.x0_error``)."""
        denoiser = self.ema_denoiser()
        y, cond = self.inputs(batch)
        return denoiser.process.x0_error(lambda x_t, t: denoiser(x_t, t, y, cond), batch["x0"], y).cpu()

    @rank_zero_only
    def export(self, directory: Optional[str] = None) -> Path:
        """Write the EMA model with ``save_pretrained`` semantics (safetensors + JSON), with the recent
        x0-error estimate as the process's ``x0_variance`` when they are being made."""
        if self.x0_errors:
            estimate = torch.stack(list(self.x0_errors)).mean(0)
            self.denoiser.process.register_to_config(x0_variance=[float(v) for v in estimate])
        return save_denoiser(self.ema_denoiser(), directory or self.hparams.export_dir, extra=self.export_extra())

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        denoiser = self.ema_denoiser()
        y, cond = self.inputs(batch)
        generator = torch.Generator(device="cpu").manual_seed(batch_idx)
        x0, _ = sample(lambda x_t, t: denoiser(x_t, t, y, cond), denoiser.process, y,
                       num_inference_steps=self.hparams.val_steps, deterministic=self.hparams.val_deterministic,
                       generator=generator)
        self.log_metrics(x0, batch["x0"], degraded=batch["y"])

    def configure_optimizers(self):
        return self.warmup_adamw(self.denoiser.parameters(), self.hparams.weight_decay)


def _layers_per_block(backbone) -> Optional[int]:
    """A diffusers UNet's ``layers_per_block`` (``None`` for backbones without one)."""
    return getattr(getattr(backbone, "config", None), "layers_per_block", None)

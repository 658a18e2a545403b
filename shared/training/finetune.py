"""Fine-tuning a trained denoiser for a time budget, outside Lightning (seconds, one process, no files).

Users adapt a shipped model to their own data at inference time (a forecaster to one series, for example):
a few hundred optimizer steps on batches drawn from that data, with the process's own loss,

    theta <- AdamW(theta, grad_theta  E_t,eps |f_theta(x_t, t | y, cond) - x0|^2)    (ResShift's x0 loss; any
                                                                                  process's ``training_loss``)

at a small constant rate, stopped by wall time or step count, and the Polyak average of the visited weights
(``theta_bar = mean_k theta_k``, "stochastic weight averaging") returned so the stopping point's gradient
noise does not end up in the model. The caller's denoiser is never modified; a copy is trained.
A Lightning ``Trainer`` is the right tool for training runs; this is the right tool for a 10-second adaptation
inside a user's call, where a trainer's set-up costs more than the budget.
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Optional

import torch
from torch.optim.swa_utils import AveragedModel

from ..denoiser import ConditionalDenoiser


def fine_tune(denoiser: ConditionalDenoiser, batches: Callable[[], dict[str, torch.Tensor]],
              seconds: Optional[float] = None, max_steps: Optional[int] = None, lr: float = 1e-4,
              generator: Optional[torch.Generator] = None,
              progress: Optional[Callable[[int, float], None]] = None) -> tuple[ConditionalDenoiser, int]:
    """``(tuned, steps)``: a copy of ``denoiser`` trained on ``batches()`` (dicts with ``x0``, ``y`` and
    optionally ``cond``) until ``seconds`` of wall time or ``max_steps`` steps (whichever comes first; at
    least one of them is required), returned as the average of the weights it visited, in eval mode.
    ``progress(step, loss)`` is called after every step."""
    if seconds is None and max_steps is None:
        raise ValueError("fine_tune needs a budget: seconds or max_steps")
    if (seconds is not None and seconds <= 0) or (max_steps is not None and max_steps < 1):
        raise ValueError(f"fine_tune budget must be positive, got seconds={seconds}, max_steps={max_steps}")
    tuned = copy.deepcopy(denoiser).train().requires_grad_(True)
    params = [p for p in tuned.backbone.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    average = AveragedModel(tuned.backbone)
    start, step = time.perf_counter(), 0
    while True:
        batch = batches()
        x0, y, cond = batch["x0"], batch["y"], batch.get("cond")
        loss = tuned.process.training_loss(lambda x_t, t: tuned(x_t, t, y, cond), x0, y, generator=generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        average.update_parameters(tuned.backbone)
        step += 1
        if progress is not None:
            progress(step, float(loss.detach()))
        if (max_steps is not None and step >= max_steps) or (seconds is not None and time.perf_counter() - start >= seconds):
            break
    tuned.backbone.load_state_dict(average.module.state_dict())
    return tuned.eval().requires_grad_(False), step

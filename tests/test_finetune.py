"""shared.training.finetune: budgets, the caller's model untouched, the averaged weights, and that it learns."""

from __future__ import annotations

import pytest
import torch

from shared.backbone1d import SeriesUNet
from shared.denoiser import ConditionalDenoiser
from shared.processes import ResShiftScheduler
from shared.training.finetune import fine_tune


def tiny() -> ConditionalDenoiser:
    torch.manual_seed(0)
    process = ResShiftScheduler(num_train_timesteps=4, kappa=1.0, min_noise_level=0.2, etas_end=0.99, power=0.3)
    return ConditionalDenoiser(SeriesUNet(in_channels=2, out_channels=1, width=8, layers=2), process, concat_y=True)


def batch() -> dict[str, torch.Tensor]:
    """A fixed task: the clean signal is the conditioning input shifted up by one."""
    y = torch.sin(torch.linspace(0, 6.28, 32)).expand(8, 1, 32).clone()
    return {"x0": y + 1.0, "y": y}


def loss_of(denoiser: ConditionalDenoiser) -> float:
    b, g = batch(), torch.Generator().manual_seed(1)
    with torch.no_grad():
        return float(denoiser.process.training_loss(lambda x_t, t: denoiser(x_t, t, b["y"], None), b["x0"], b["y"],
                                                    generator=g))


def test_fine_tune_learns_and_leaves_the_original_alone():
    model = tiny()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, steps = fine_tune(model, batch, max_steps=150, lr=1e-2, generator=torch.Generator().manual_seed(0))
    assert steps == 150
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert not tuned.training and not any(p.requires_grad for p in tuned.parameters())
    assert loss_of(tuned) < 0.5 * loss_of(model)


def test_fine_tune_budgets():
    model = tiny()
    with pytest.raises(ValueError, match="needs a budget"):
        fine_tune(model, batch)
    with pytest.raises(ValueError, match="must be positive"):
        fine_tune(model, batch, seconds=0)
    _, steps = fine_tune(model, batch, seconds=0.2, max_steps=10_000)
    assert 1 <= steps < 10_000

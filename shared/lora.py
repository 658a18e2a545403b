"""One-step LoRA students on a frozen teacher (peft), blended by output (PiSA-SR rule).

A student is the teacher's backbone, frozen, with low-rank adapters injected by
``peft.inject_adapter_in_model`` (diffusers' ``UNet2DModel`` has no ``add_adapter``). Two adapters
are used: ``pixel`` (fidelity) and ``detail`` (perceptual). With ``f_pix`` the network with the
pixel adapter only and ``f_both`` with both, the output is::

    out = l_pix * f_pix + l_detail * (f_both - f_pix)

``l_pix = l_detail = 1`` gives ``f_both``: one evaluation, and the adapters can be merged into
the base weights (``merge_adapters``). Any other blend costs two evaluations. Note peft's LoRA
scale is ``lora_alpha / r``; we record rank, alpha and target modules in the checkpoint.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

#: diffusers UNet2DModel layers adapted by default: resnet and sampling convolutions,
#: attention projections, the stem/head convolutions and the time-embedding projections.
DEFAULT_TARGETS = ("conv1", "conv2", "conv", "conv_shortcut", "conv_in", "conv_out",
                   "to_q", "to_k", "to_v", "to_out.0", "time_emb_proj")


@dataclass
class AdapterSpec:
    """What is needed to rebuild an adapter: its name, rank, alpha and target module names."""

    name: str
    rank: int = 16
    alpha: float = 16.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))

    def to_dict(self) -> dict:
        return asdict(self)


def tuner_layers(model: nn.Module) -> list[BaseTunerLayer]:
    """All peft-adapted layers inside ``model``."""
    return [m for m in model.modules() if isinstance(m, BaseTunerLayer)]


def add_adapter(model: nn.Module, spec: AdapterSpec) -> nn.Module:
    """Inject a LoRA adapter (zero-initialised B, so the output is unchanged at first)."""
    config = LoraConfig(r=spec.rank, lora_alpha=spec.alpha, target_modules=list(spec.target_modules),
                        init_lora_weights=True)
    with warnings.catch_warnings():  # a second adapter is intended, not an accident
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        return inject_adapter_in_model(config, model, adapter_name=spec.name)


def set_active_adapters(model: nn.Module, names: Sequence[str]) -> None:
    """Activate exactly ``names`` (an empty list runs the bare base model)."""
    names = list(names)
    for layer in tuner_layers(model):
        layer.enable_adapters(bool(names))
        if names:
            layer.set_adapter(names)
    # peft's set_adapter marks active adapters trainable; callers choose trainability explicitly.


def adapter_state_dict(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """The LoRA weights of adapter ``name`` (keys as in ``model.state_dict()``)."""
    marks = (f".lora_A.{name}.", f".lora_B.{name}.")
    return {k: v for k, v in model.state_dict().items() if any(m in k for m in marks)}


def load_adapter_state_dict(model: nn.Module, name: str, state: dict[str, torch.Tensor]) -> None:
    """Load weights saved by :func:`adapter_state_dict`; every adapter key must match."""
    expected = set(adapter_state_dict(model, name))
    if set(state) != expected:
        missing, unexpected = expected - set(state), set(state) - expected
        raise ValueError(f"adapter {name!r} mismatch: {len(missing)} missing, {len(unexpected)} unexpected keys")
    model.load_state_dict(state, strict=False)


def set_trainable(model: nn.Module, names: Sequence[str]) -> list[nn.Parameter]:
    """Freeze everything except the LoRA weights of adapters ``names``; return those params."""
    params = []
    for key, p in model.named_parameters():
        train = any(f".lora_A.{n}." in key or f".lora_B.{n}." in key for n in names)
        p.requires_grad_(train)
        if train:
            params.append(p)
    return params


def merge_adapters(model: nn.Module, names: Sequence[str]) -> None:
    """Fold adapters ``names`` into the base weights (one plain evaluation afterwards)."""
    for layer in tuner_layers(model):
        layer.merge(adapter_names=list(names))


def unmerge_adapters(model: nn.Module) -> None:
    """Undo :func:`merge_adapters`."""
    for layer in tuner_layers(model):
        layer.unmerge()


def is_merged(model: nn.Module) -> bool:
    return any(layer.merged for layer in tuner_layers(model))


def blend_outputs(f_pix: torch.Tensor, f_both: torch.Tensor, pix: float, detail: float) -> torch.Tensor:
    """PiSA-SR output blend ``pix * f_pix + detail * (f_both - f_pix)``."""
    return pix * f_pix + detail * (f_both - f_pix)

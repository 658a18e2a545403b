"""Checkpoints as safetensors + JSON, in a diffusers-style folder. Never pickle.

Layout of a model folder::

    model.json                      what to rebuild: denoiser settings, process class, extras
    README.md                       the model card (kept when the folder is re-exported)
    backbone/config.json            diffusers model config (``save_pretrained``)
    backbone/diffusion_pytorch_model.safetensors
    process/scheduler_config.json   the process (a diffusers scheduler config)
    adapters/<name>.safetensors     optional LoRA adapters (see :mod:`shared.lora`)

Classes are looked up by name in small registries below, so a checkpoint names *what* it is,
never a Python import path to execute.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import torch
from diffusers import UNet2DModel

from .backbone1d import SeriesUNet
from .denoiser import ConditionalDenoiser
from .edm import EDMScheduler
from .files import atomic_directory
from .masked_diffusion import MaskedDiffusion
from .processes import DirectPrediction, GaussianDiffusion, ResShiftScheduler
from .sde import OUVEScheduler
from .transformer import TokenTransformer

FORMAT_VERSION = 1
BACKBONES = {"UNet2DModel": UNet2DModel, "TokenTransformer": TokenTransformer, "SeriesUNet": SeriesUNet}
PROCESSES: dict[str, Any] = {cls.__name__: cls for cls in
                             (ResShiftScheduler, GaussianDiffusion, OUVEScheduler, DirectPrediction, MaskedDiffusion,
                              EDMScheduler)}


def register_process(cls) -> Any:
    """Make a process class loadable from checkpoints by its class name (used as a decorator)."""
    PROCESSES[cls.__name__] = cls
    return cls


def register_backbone(cls) -> Any:
    """Make a backbone class loadable from checkpoints by its class name."""
    BACKBONES[cls.__name__] = cls
    return cls


def save_denoiser(
    denoiser: ConditionalDenoiser,
    directory: str | os.PathLike,
    extra: Optional[dict[str, Any]] = None,
    dtype: torch.dtype = torch.float16,
    adapters: Optional[dict[str, dict[str, torch.Tensor]]] = None,
) -> Path:
    """Write ``denoiser`` (backbone weights in ``dtype``) to ``directory`` atomically.

    ``extra`` is free-form JSON (task settings, LoRA configs, training provenance).
    ``adapters`` maps adapter names to state dicts saved as ``adapters/<name>.safetensors``.
    """
    from safetensors.torch import save_file

    target = Path(directory)

    def write(tmp: Path) -> None:
        backbone = denoiser.backbone
        state = {k: v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()
                 for k, v in backbone.state_dict().items()}
        backbone.save_config(tmp / "backbone")
        save_file(state, str(tmp / "backbone" / "diffusion_pytorch_model.safetensors"))
        denoiser.process.save_config(tmp / "process")
        meta = {
            "format_version": FORMAT_VERSION,
            "backbone_class": type(backbone).__name__,
            "process_class": type(denoiser.process).__name__,
            "denoiser": denoiser.config,
            "extra": extra or {},
        }
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        for name, adapter_state in (adapters or {}).items():
            (tmp / "adapters").mkdir(exist_ok=True)
            save_file({k: v.detach().to("cpu", dtype).contiguous() for k, v in adapter_state.items()},
                      str(tmp / "adapters" / f"{name}.safetensors"))
        card = target / "README.md"   # the model card is written by people, not by training: keep it
        if card.is_file():
            shutil.copy2(card, tmp / "README.md")

    atomic_directory(target, write)
    return target


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``model.json`` of a model folder, with a clear error when it is not one."""
    path = Path(directory) / "model.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not a model folder (no model.json)")
    meta = json.loads(path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}: unsupported checkpoint format {meta.get('format_version')}")
    return meta


def load_denoiser(
    directory: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[ConditionalDenoiser, dict[str, Any]]:
    """Rebuild a :class:`ConditionalDenoiser` from a folder written by :func:`save_denoiser`.

    Returns ``(denoiser, meta)`` where ``meta["extra"]`` holds the free-form settings.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = read_meta(directory)
    try:
        backbone_cls = BACKBONES[meta["backbone_class"]]
        process_cls = PROCESSES[meta["process_class"]]
    except KeyError as err:
        raise ValueError(f"{directory}: unknown class {err} in model.json") from None
    backbone = backbone_cls.from_config(backbone_cls.load_config(directory / "backbone"))
    state = load_file(str(directory / "backbone" / "diffusion_pytorch_model.safetensors"))
    backbone.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()})
    process = process_cls.from_config(process_cls.load_config(directory / "process"))
    denoiser = ConditionalDenoiser(backbone, process, **meta["denoiser"]).to(device=device, dtype=dtype)
    denoiser.eval()
    return denoiser, meta


def load_adapter_state(directory: str | os.PathLike, name: str) -> dict[str, torch.Tensor]:
    """The saved state dict of adapter ``name`` (float32)."""
    from safetensors.torch import load_file

    path = Path(directory) / "adapters" / f"{name}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: no adapter named {name!r}")
    return {k: v.float() for k, v in load_file(str(path)).items()}

"""What every vertical's pipeline shares: run reports, weights discovery, device and dtype handling.

A pipeline holds one or more :class:`shared.denoiser.ConditionalDenoiser` (or one-step students)
and follows diffusers' conventions where they apply: ``from_pretrained(path, device=...,
torch_dtype=...)`` loads local weights only, ``.to(device, dtype)`` moves every model, calls take
``num_inference_steps`` and ``generator``, and each call leaves a :class:`RunInfo` in
``pipeline.last_run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import torch
from torch import nn

from . import cli
from .files import InputError

#: dtypes a pipeline runs in, by the names ``--dtype`` takes.
DTYPES = {name: getattr(torch, name) for name in cli.DTYPES}


@dataclass
class RunInfo:
    """What the last call did.

    Attributes:
        network_evaluations: backbone evaluations, all tiles and channels included.
        tiles: tiles (image tiles, audio chunks) per channel.
        seconds: wall time of the call.
        channels: channels processed (audio; 1 for images).
        method: the sampler or model used.
    """

    network_evaluations: int = 0
    tiles: int = 0
    seconds: float = 0.0
    channels: int = 1
    method: str = ""


@dataclass
class PipelineOutput:
    """A pipeline's result with its :class:`RunInfo` (returned when ``return_dict=True``)."""

    output: object
    run: RunInfo = field(default_factory=RunInfo)


def as_dtype(dtype) -> torch.dtype:
    """``torch.float32``/``bfloat16``/``float16`` from a dtype or its name; :class:`InputError` otherwise."""
    if isinstance(dtype, torch.dtype) and dtype in DTYPES.values():
        return dtype
    if isinstance(dtype, str) and dtype.replace("torch.", "") in DTYPES:
        return DTYPES[dtype.replace("torch.", "")]
    raise InputError(f"unsupported dtype {dtype!r}; use one of {', '.join(DTYPES)}")


def model_folders(root: str | os.PathLike, subfolders: Sequence[str]) -> list[Path]:
    """The model folders a pipeline loads from ``root``: ``root`` itself if it holds a ``model.json``,
    else those of ``subfolders`` that do. :class:`InputError` for a missing root or no model."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root}: weights folder not found")
    if (root / "model.json").is_file():
        return [root]
    found = [root / name for name in subfolders if (root / name / "model.json").is_file()]
    if not found:
        raise InputError(f"{root}: no model found (expected model.json, or sub-folders {', '.join(subfolders)})")
    return found


class Pipeline:
    """Base of the verticals' pipelines: the device/dtype of its models and ``.to()``."""

    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    def modules(self) -> Iterator[nn.Module]:  # pragma: no cover - abstract
        """Every model the pipeline runs."""
        raise NotImplementedError

    def to(self, device: Optional[str | torch.device] = None, dtype=None) -> "Pipeline":
        """Move every model to ``device`` and/or cast it to ``dtype`` (float32, bfloat16, float16)."""
        if device is not None:
            self.device = torch.device(device)
        if dtype is not None:
            self.dtype = as_dtype(dtype)
        for module in self.modules():
            module.to(device=self.device, dtype=self.dtype)
        return self


def grid_multiple(models: Iterable[nn.Module]) -> int:
    """The largest spatial multiple any of ``models`` needs (:attr:`ConditionalDenoiser.grid_multiple`)."""
    return max(m.grid_multiple for m in models)

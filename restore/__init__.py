"""Restoration vertical: image super-resolution (``restore.sr``) and, later, MRI (``restore.mri``).

``SuperResolutionPipeline`` is imported on first use, so the command line (``python -m restore.sr``)
answers ``--help`` and argument errors without loading torch.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sr.pipeline import SuperResolutionPipeline

__all__ = ["SuperResolutionPipeline"]


def __getattr__(name: str):
    """Import ``SuperResolutionPipeline`` (torch, diffusers, peft) only when it is asked for."""
    if name == "SuperResolutionPipeline":
        from .sr.pipeline import SuperResolutionPipeline

        return SuperResolutionPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""x4 image super-resolution: one-step LoRA student and ResShift teacher.

Command line: ``python -m restore.sr INPUT -o OUTPUT [--one-step | --steps N]``.
``SuperResolutionPipeline`` is imported on first use (the command line parses its arguments first).
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import SuperResolutionPipeline

__all__ = ["SuperResolutionPipeline"]


def __getattr__(name: str):
    """Import ``SuperResolutionPipeline`` (torch, diffusers, peft) only when it is asked for."""
    if name == "SuperResolutionPipeline":
        from .pipeline import SuperResolutionPipeline

        return SuperResolutionPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

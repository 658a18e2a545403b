"""x4 image super-resolution: one-step LoRA student and ResShift teacher.

Command line: ``python -m restore.sr INPUT -o OUTPUT [--one-step | --steps N]``.
``SuperResolutionPipeline`` is imported on first use (the command line parses its arguments first).
"""

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from .pipeline import SuperResolutionPipeline

__all__ = ["SuperResolutionPipeline"]
__getattr__ = lazy_attributes(__name__, {"SuperResolutionPipeline": ".pipeline"})

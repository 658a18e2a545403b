"""Restoration vertical: image super-resolution (``restore.sr``) and, later, MRI (``restore.mri``).

``SuperResolutionPipeline`` is imported on first use, so the command line (``python -m restore.sr``)
answers ``--help`` and argument errors without loading torch.
"""

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from .sr.pipeline import SuperResolutionPipeline

__all__ = ["SuperResolutionPipeline"]
__getattr__ = lazy_attributes(__name__, {"SuperResolutionPipeline": ".sr.pipeline"})

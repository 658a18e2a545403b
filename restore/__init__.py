"""Restoration vertical: image super-resolution (``restore.sr``) and, later, MRI (``restore.mri``)."""

from .sr.pipeline import SuperResolutionPipeline

__all__ = ["SuperResolutionPipeline"]

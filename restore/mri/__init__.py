"""MRI reconstruction of undersampled Cartesian k-space: a few-step ResShift model with data consistency
in every sampler step, and its one-step LoRA student (issue 13).

Command line: ``python -m restore.mri INPUT -o OUTPUT [--one-step | --steps N] [--samples N]``.
Python: ``from restore.mri import MRIReconstructionPipeline`` (imported on first use, so the command line
answers ``--help`` before torch loads). Modules: :mod:`~restore.mri.fourier` (the measurement ``A = M F S``),
:mod:`~restore.mri.masks` (seeded fastMRI masks), :mod:`~restore.mri.files` (fastMRI HDF5 in and out),
:mod:`~restore.mri.coils` (ESPIRiT maps), :mod:`~restore.mri.volumes`, :mod:`~restore.mri.simulate` and
:mod:`~restore.mri.data` (real volumes, scanner-like acquisitions, training pairs),
:mod:`~restore.mri.baselines` (zero-filled, sigpy CS), :mod:`~restore.mri.unet` (the fastMRI U-Net
baseline), :mod:`~restore.mri.pipeline`, :mod:`~restore.mri.cli`.
"""

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from .pipeline import MRIReconstructionPipeline

__all__ = ["MRIReconstructionPipeline"]
__getattr__ = lazy_attributes(__name__, {"MRIReconstructionPipeline": ".pipeline"})

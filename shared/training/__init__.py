"""Lightning training of the core's models, one module per file; no domain knowledge.

Batches are dicts with ``x0`` (clean target), ``y`` (degraded input on the target grid) and
optionally ``cond`` (extra conditioning on the backbone grid); vertical data modules produce them
and pass their validation metrics and domain losses in (as import paths in the experiment configs).

* :class:`ConditionalDiffusionModule`     -- a denoiser trained with its process's own loss (+ EMA).
* :class:`OneStepStudentModule`           -- LoRA adapters of a one-step student on a frozen teacher.
* :class:`ConsistencyDistillationModule`  -- a consistency model distilled from a teacher.
"""

from .base import ExportingModule, build_denoiser
from .consistency import ConsistencyDistillationModule
from .diffusion import ConditionalDiffusionModule
from .student import OneStepStudentModule

__all__ = ["ExportingModule", "build_denoiser", "ConditionalDiffusionModule", "OneStepStudentModule",
           "ConsistencyDistillationModule"]

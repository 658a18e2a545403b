"""Choices of the MRI command (no heavy imports: the parser is built before torch loads)."""

#: fastMRI files in, fastMRI-layout files out.
EXTENSIONS = (".h5",)
#: Where data consistency is applied (see :mod:`restore.mri.pipeline`).
DC_MODES = ("hard", "soft", "end", "none")
MASK_KINDS = ("random", "equispaced")
ACCELERATIONS = (4, 8)

"""MRI reconstruction on the shared core (issue 13, in progress): the Cartesian measurement operator
(:mod:`restore.mri.fourier`) and seeded fastMRI masks (:mod:`restore.mri.masks`) so far."""

"""MRI reconstruction on the shared core (issue 13, in progress).

So far: the Cartesian measurement operator (:mod:`restore.mri.fourier`), seeded fastMRI masks
(:mod:`restore.mri.masks`) and fastMRI's HDF5 files (:mod:`restore.mri.files`); the training data
(:mod:`restore.mri.volumes`, :mod:`restore.mri.simulate`) are being added. No model or command line yet.
"""

"""MRI reconstruction on the shared core (issue 13, in progress).

Built so far: the Cartesian measurement operator (:mod:`restore.mri.fourier`), seeded fastMRI masks
(:mod:`restore.mri.masks`), fastMRI's HDF5 files (:mod:`restore.mri.files`), real MR volumes and
scanner-like simulation for training (:mod:`restore.mri.volumes`, :mod:`restore.mri.simulate`,
:mod:`restore.mri.data`), the zero-filled and compressed-sensing baselines
(:mod:`restore.mri.baselines`), the reconstruction pipeline with data consistency at every step
(:mod:`restore.mri.pipeline`) and its command line (``python -m restore.mri``, with ``--weights``).
Not yet: shipped weights, ESPIRiT coil maps, the one-step student, the benchmark.
"""

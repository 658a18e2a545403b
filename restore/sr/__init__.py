"""x4 image super-resolution: one-step LoRA student and ResShift teacher.

Command line: ``python -m restore.sr INPUT -o OUTPUT [--one-step | --steps N]``.
"""

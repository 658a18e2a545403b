"""Molecule generation with masked discrete diffusion and reward steering (issue 14, in progress).

``from science.molecules import MoleculeGenerator`` (lazy: importing the package loads nothing heavy).
"""

from __future__ import annotations

__all__ = ["MoleculeGenerator"]


def __getattr__(name):
    if name == "MoleculeGenerator":
        from .generator import MoleculeGenerator

        return MoleculeGenerator
    raise AttributeError(name)

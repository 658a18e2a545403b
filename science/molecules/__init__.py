"""Molecule generation with masked discrete diffusion and reward steering (issue 14, in progress).

``from science.molecules import MoleculeGenerator`` (lazy: importing the package loads nothing heavy).
"""

from __future__ import annotations

from shared.lazy import lazy_attributes

__all__ = ["MoleculeGenerator"]
__getattr__ = lazy_attributes(__name__, {"MoleculeGenerator": ".generator"})

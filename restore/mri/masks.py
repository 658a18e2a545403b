"""Column masks for retrospective undersampling, from ``fastmri.data.subsample`` (seeded).

``random``: the centre fraction of columns fully sampled, the rest drawn at random so that
``1 / acceleration`` of all columns are kept on average (fastMRI's ``RandomMaskFunc``);
``equispaced``: the same centre, the rest on an equispaced grid with a seeded offset
(``EquiSpacedMaskFunc``). fastMRI's defaults: centre fraction 0.08 at 4x, 0.04 at 8x.
"""

from __future__ import annotations

from typing import Optional

import torch

MASKS = ("random", "equispaced")
#: fastMRI's challenge pairs: acceleration -> centre fraction.
CENTER_FRACTIONS = {4: 0.08, 8: 0.04}


def column_mask(width: int, acceleration: int, kind: str = "random", center_fraction: Optional[float] = None,
                seed: Optional[int] = None) -> torch.Tensor:
    """A ``(width,)`` float32 0/1 mask of measured k-space columns; the same ``seed`` gives the same mask."""
    from fastmri.data.subsample import EquiSpacedMaskFunc, RandomMaskFunc

    if kind not in MASKS:
        raise ValueError(f"unknown mask {kind!r}; choose from {', '.join(MASKS)}")
    if center_fraction is None:
        if acceleration not in CENTER_FRACTIONS:
            raise ValueError(f"give center_fraction for acceleration {acceleration} "
                             f"(defaults exist for {', '.join(map(str, CENTER_FRACTIONS))})")
        center_fraction = CENTER_FRACTIONS[acceleration]
    make = RandomMaskFunc if kind == "random" else EquiSpacedMaskFunc
    mask, _ = make([center_fraction], [acceleration])((1, width, 1), seed=seed)
    return mask.reshape(width).float()

"""The MOSES benchmark sets (Polykovskiy et al. 2020), read by path from the ``molsets`` wheel.

``molsets`` pins an old ``pomegranate`` and cannot be imported, so it is installed with
``--no-deps`` (the ``[train]`` extra) and only its gzipped CSV files are read:
``moses/dataset/data/{train,test,test_scaffolds}.csv.gz`` (one ``SMILES`` column; 1,584,663 /
176,074 / 176,225 molecules). The model is trained on ``train`` minus a seeded validation subset
of :data:`VALIDATION_SIZE` molecules (checkpoint selection); ``test`` and ``test_scaffolds`` are
only for the benchmark.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

SPLITS = ("train", "test", "test_scaffolds")
VALIDATION_SIZE = 10_000
INSTALL = "pip install --no-deps molsets (part of the [train] extra)"


def data_dir() -> Path:
    """The folder of MOSES's csv.gz files, located without importing ``moses`` (``find_spec`` of a
    top-level package does not run it)."""
    spec = importlib.util.find_spec("moses")
    for root in (spec.submodule_search_locations or []) if spec else []:
        folder = Path(root) / "dataset" / "data"
        if all((folder / f"{name}.csv.gz").is_file() for name in SPLITS):
            return folder
    raise FileNotFoundError(f"the MOSES data (molsets wheel) is not installed: {INSTALL}")


@lru_cache(maxsize=3)
def read_split(name: str) -> tuple[str, ...]:
    """The SMILES of MOSES split ``name`` (``train``, ``test`` or ``test_scaffolds``)."""
    if name not in SPLITS:
        raise ValueError(f"unknown MOSES split {name!r}; choose from {', '.join(SPLITS)}")
    path = data_dir() / f"{name}.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        if header != ["SMILES"]:
            raise ValueError(f"{path}: unexpected header {header}")
        return tuple(row[0] for row in rows)


def training_split(seed: int = 0) -> tuple[list[str], list[str]]:
    """``(train, validation)``: MOSES ``train`` with a seeded random :data:`VALIDATION_SIZE` held out."""
    smiles = read_split("train")
    held = np.zeros(len(smiles), dtype=bool)
    held[np.random.default_rng(seed).choice(len(smiles), VALIDATION_SIZE, replace=False)] = True
    return [s for s, h in zip(smiles, held) if not h], [s for s, h in zip(smiles, held) if h]

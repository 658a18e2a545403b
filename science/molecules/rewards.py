"""Rewards for steering generation (rdkit), by name or any Python callable ``smiles -> float``.

* ``qed``: quantitative estimate of drug-likeness (Bickerton et al. 2012), ``rdkit.Chem.QED.qed``, in [0, 1];
* ``sa``: synthetic accessibility (Ertl & Schuffenhauer 2009, ``rdkit.Contrib.SA_Score``; 1 easy .. 10
  hard), normalised to [0, 1] as ``(10 - SA) / 9``;
* ``logp``: Crippen logP inside a target window ``[low, high]`` (default 1..3)::

      r = exp(-d^2 / 2),   d = max(low - logP, 0, logP - high)          (1 inside the window)

Invalid molecules (and the empty string) score :data:`FLOOR` for every reward. A user reward is
``"module:function"`` (CLI) or a callable (API); it receives canonical SMILES of valid molecules only.
"""

from __future__ import annotations

import importlib
import math
import os
from functools import lru_cache
from typing import Callable, Iterable, Union

import numpy as np

#: The score of an invalid molecule, whatever the reward.
FLOOR = 0.0
LOGP_WINDOW = (1.0, 3.0)

Reward = Callable[[str], float]


def _mol(smiles: str):
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem.MolFromSmiles(smiles) if smiles else None


def qed(smiles: str) -> float:
    """QED in [0, 1] (:data:`FLOOR` if invalid)."""
    from rdkit.Chem import QED

    mol = _mol(smiles)
    return FLOOR if mol is None else float(QED.qed(mol))


@lru_cache(maxsize=1)
def _sascorer():
    """rdkit's contributed ``SA_Score/sascorer.py``, loaded by path (it is not an importable package;
    it reads its bundled fragment scores on first use)."""
    import importlib.util

    from rdkit.Chem import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    spec = importlib.util.spec_from_file_location("rdkit_contrib_sascorer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sa_raw(smiles: str) -> float:
    """The synthetic accessibility score, 1 (easy) .. 10 (hard); NaN if invalid."""
    mol = _mol(smiles)
    return math.nan if mol is None else float(_sascorer().calculateScore(mol))


def sa(smiles: str) -> float:
    """``(10 - SA) / 9`` in [0, 1], higher is easier (:data:`FLOOR` if invalid)."""
    raw = sa_raw(smiles)
    return FLOOR if math.isnan(raw) else (10.0 - raw) / 9.0


def logp(smiles: str, low: float = LOGP_WINDOW[0], high: float = LOGP_WINDOW[1]) -> float:
    """``exp(-d^2/2)`` with ``d`` the distance of Crippen logP to ``[low, high]`` (:data:`FLOOR` if invalid)."""
    from rdkit.Chem import Crippen

    mol = _mol(smiles)
    if mol is None:
        return FLOOR
    value = Crippen.MolLogP(mol)
    d = max(low - value, 0.0, value - high)
    return math.exp(-0.5 * d * d)


REWARDS: dict[str, Reward] = {"qed": qed, "sa": sa, "logp": logp}


def resolve(reward: Union[str, Reward]) -> tuple[str, Reward]:
    """``(name, function)`` for a reward name (:data:`REWARDS`), ``"module:function"``, or a callable.
    ``ValueError`` (one line) for an unknown name, a module that does not import, a missing function."""
    if callable(reward):
        return getattr(reward, "__name__", "reward"), reward
    if reward in REWARDS:
        return reward, REWARDS[reward]
    module, sep, name = str(reward).partition(":")
    if not sep or not module or not name:
        raise ValueError(f"unknown reward {reward!r}: choose {', '.join(REWARDS)} or give module:function")
    try:
        fn = getattr(importlib.import_module(module), name)
    except ImportError as err:
        raise ValueError(f"reward {reward!r}: cannot import module {module!r} ({err})") from None
    except AttributeError:
        raise ValueError(f"reward {reward!r}: module {module!r} has no {name!r}") from None
    if not callable(fn):
        raise ValueError(f"reward {reward!r}: {name!r} is not callable")
    return name, fn


def score(smiles: Iterable[str], reward: Union[str, Reward]) -> np.ndarray:
    """The reward of every SMILES: ``FLOOR`` for invalid ones; a user function gets canonical SMILES of
    valid molecules and must return a finite number (else ``ValueError`` naming the molecule)."""
    from .metrics import canonical

    name, fn = resolve(reward)
    out = []
    for s in smiles:
        c = canonical(s)
        if c is None:
            out.append(FLOOR)
            continue
        value = fn(c)
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"reward {name} returned {value!r} for {c}, not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"reward {name} returned {value} for {c}")
        out.append(value)
    return np.asarray(out, dtype=np.float64)

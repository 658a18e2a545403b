"""Quality metrics of generated molecules (rdkit), and the validation metric of training.

* validity: the fraction of strings rdkit parses into a molecule (``Chem.MolFromSmiles`` is not None,
  the empty string excluded);
* uniqueness: distinct canonical SMILES among the valid ones / valid ones;
* novelty: valid unique molecules whose canonical SMILES is not in the training set / valid unique.
"""

from __future__ import annotations

from typing import Iterable, Optional


def canonical(smiles: str) -> Optional[str]:
    """rdkit's canonical SMILES of ``smiles``, None when it does not parse (or is empty)."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else Chem.MolToSmiles(mol)


def validity(smiles: Iterable[str]) -> float:
    """Fraction of ``smiles`` that parse."""
    smiles = list(smiles)
    return sum(canonical(s) is not None for s in smiles) / max(1, len(smiles))


def validity_of_tokens(estimate, target, kind: str = "smiles"):
    """Validation metric of training (``metric(estimate, target)``): the validity of the sampled token
    sequences ``estimate`` ``(B, L)`` decoded with the default tokenizer of ``kind`` (``target`` is
    unused: the model is unconditional)."""
    import torch

    from .tokens import tokenizer_from_config

    tokenizer = tokenizer_from_config({"kind": kind})
    return torch.tensor(validity(tokenizer.decode(row) for row in estimate.tolist()))


def validity_of_selfies_tokens(estimate, target):
    """:func:`validity_of_tokens` for SELFIES models."""
    return validity_of_tokens(estimate, target, "selfies")


def uniqueness(smiles: Iterable[str]) -> float:
    """Distinct canonical SMILES / valid molecules (0 when none is valid)."""
    valid = [c for c in map(canonical, smiles) if c is not None]
    return len(set(valid)) / max(1, len(valid))


def novelty(smiles: Iterable[str], reference: Iterable[str]) -> float:
    """Fraction of the distinct valid molecules whose canonical SMILES is not in ``reference`` (taken as
    given: MOSES's training SMILES are rdkit-canonical; 99.95 % are unchanged by this rdkit)."""
    unique = {c for c in map(canonical, smiles) if c is not None}
    reference = reference if isinstance(reference, (set, frozenset)) else set(reference)
    return len(unique - reference) / max(1, len(unique))


def internal_diversity(smiles: Iterable[str], radius: int = 2, bits: int = 1024, limit: int = 2000) -> float:
    """MOSES's IntDiv1: ``1 - mean Tanimoto similarity`` over all pairs of the first ``limit`` distinct
    valid molecules (Morgan fingerprints, ``radius``, ``bits``); 0 for fewer than two molecules."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    unique = list(dict.fromkeys(c for c in map(canonical, smiles) if c is not None))[:limit]
    if len(unique) < 2:
        return 0.0
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    fps = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in unique]
    total = sum(sum(DataStructs.BulkTanimotoSimilarity(fp, fps)) for fp in fps)   # includes the n self-pairs
    n = len(fps)
    return 1.0 - (total - n) / (n * (n - 1))


def evaluate(smiles: Iterable[str], reference: Optional[Iterable[str]] = None) -> dict:
    """Validity, uniqueness, internal diversity, the mean of every named reward over valid molecules,
    and novelty against ``reference`` (e.g. the training SMILES) when given."""
    from . import rewards

    smiles = list(smiles)
    valid = [s for s in smiles if canonical(s) is not None]
    report = {"molecules": len(smiles), "validity": validity(smiles), "uniqueness": uniqueness(smiles),
              "internal_diversity": internal_diversity(valid)}
    if reference is not None:
        report["novelty"] = novelty(valid, reference)
    for name in rewards.REWARDS:
        report[f"mean_{name}"] = float(rewards.score(valid, name).mean()) if valid else float("nan")
    return report

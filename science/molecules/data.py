"""Training data for the molecule model (Lightning data module): MOSES SMILES as token sequences.

Items are ``{"x0": tokens (L,), "y": all-mask (L,)}``: the masked diffusion model is unconditional,
so the observation only carries the shape (:class:`shared.masked_diffusion.MaskedDiffusion`).
SMILES are tokenised lazily per item (SMILES or SELFIES, :mod:`science.molecules.tokens`; a molecule
the vocabulary cannot write is replaced by the next one); the training set is MOSES ``train`` minus
the seeded validation subset (:mod:`science.molecules.moses`).
With ``randomize`` a training molecule is written as a random valid SMILES of the same molecule
(rdkit ``doRandom``; data augmentation, kept only when it tokenises within the length).
"""

from __future__ import annotations

from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .moses import training_split
from .tokens import SmilesTokenizer, TokenError, tokenizer_from_config


def random_smiles(smiles: str, rng: np.random.Generator) -> str:
    """A random SMILES of the same molecule (rdkit ``MolToSmiles(doRandom=True)``), or ``smiles``."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return smiles
    Chem.rdBase.SeedRandomNumberGenerator(int(rng.integers(2**31)))
    return Chem.MolToSmiles(mol, canonical=False, doRandom=True)


class SmilesSequences(Dataset):
    """Token sequences of a list of SMILES (index ``i`` always gives the same item)."""

    def __init__(self, smiles: list[str], tokenizer: SmilesTokenizer, randomize: float = 0.0, seed: int = 0):
        self.smiles, self.tokenizer, self.randomize, self.seed = smiles, tokenizer, randomize, seed

    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for offset in range(len(self.smiles)):
            smiles = self.smiles[(index + offset) % len(self.smiles)]
            try:
                ids = self.tokenizer.encode(smiles)
                break
            except TokenError:
                continue
        if self.randomize:
            rng = np.random.default_rng([self.seed, index])
            if rng.random() < self.randomize:
                try:
                    ids = self.tokenizer.encode(random_smiles(smiles, rng))
                except TokenError:
                    pass
        x0 = torch.tensor(ids, dtype=torch.long)
        return {"x0": x0, "y": torch.full_like(x0, self.tokenizer.mask_index)}


class MoleculeData(pl.LightningDataModule):
    """MOSES train (minus validation) for training; ``val_size`` of the held-out subset for validation.
    ``tokenizer``: ``smiles`` or ``selfies``."""

    def __init__(self, batch_size: int = 64, num_workers: int = 0, randomize: float = 0.0, val_size: int = 256,
                 length: int = 56, tokenizer: str = "smiles", seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: Optional[str] = None) -> None:
        hp = self.hparams
        tokenizer = tokenizer_from_config({"kind": hp.tokenizer, "length": hp.length})
        train, val = training_split(hp.seed)
        self.train_set = SmilesSequences(train, tokenizer, hp.randomize, hp.seed)
        self.val_set = SmilesSequences(val[:hp.val_size], tokenizer)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(self.train_set, batch_size=hp.batch_size, shuffle=True, num_workers=hp.num_workers,
                          drop_last=True, persistent_workers=hp.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.val_size, shuffle=False)

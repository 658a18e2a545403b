"""Molecules as fixed-length token sequences for the masked diffusion model: SMILES or SELFIES.

SMILES strings are split with the regular expression of Schwaller et al. (2019) (bracket atoms,
two-letter halogens, ring-closure digits, bonds and branches are single tokens), then padded with
``<pad>`` to a fixed length; the model fills every position, so a sample ends at its first ``<pad>``
(variable length without an end token). The vocabulary is fixed in code: the 24 tokens that occur
in MOSES (train, test and test_scaffolds; at most 54 per molecule), ``<pad>`` first and the
absorbing ``<mask>`` last (:class:`shared.masked_diffusion.MaskedDiffusion`'s ``mask_index``).
Strings with other tokens (charges, stereo, other elements) are rejected with the token named.

:class:`SelfiesTokenizer` writes the molecule as SELFIES (Krenn et al. 2020, the ``selfies`` package)
first: every SELFIES string decodes to a valid molecule, so validity no longer depends on the model
getting brackets and ring closures right. Its vocabulary is the 26 SELFIES symbols of MOSES (a 50k
sample of train: at most 49 per molecule; ring and branch sizes reuse atom symbols as digits).
:func:`tokenizer_from_config` rebuilds either from a model's stored settings.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional, Sequence

#: Schwaller et al. (2019), "Molecular Transformer", the SMILES tokenisation regex.
SMILES_PATTERN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])")

PAD, MASK = "<pad>", "<mask>"
#: Every token of MOSES (all three splits), most frequent first.
MOSES_TOKENS = ("c", "C", "(", ")", "1", "O", "2", "N", "=", "n", "3", "F", "-", "S", "s", "o", "Cl",
                "[nH]", "#", "4", "Br", "5", "[H]", "6")
#: The SELFIES symbols of MOSES (50k random train molecules), most frequent first.
MOSES_SELFIES = ("[C]", "[=C]", "[Ring1]", "[N]", "[Branch1]", "[=Branch1]", "[=O]", "[O]", "[=N]", "[Branch2]",
                 "[Ring2]", "[S]", "[#Branch1]", "[F]", "[=Branch2]", "[#Branch2]", "[#C]", "[=Ring1]", "[P]",
                 "[Cl]", "[NH1]", "[#N]", "[Br]", "[=Ring2]", "[=S]", "[H]")
#: Sequence length of the shipped model: the longest MOSES molecule has 54 tokens.
LENGTH = 56


class TokenError(ValueError):
    """A string that the tokenizer cannot represent (the message names the token)."""


class SmilesTokenizer:
    """``encode``: SMILES -> ``length`` token ids (``<pad>``-filled); ``decode``: ids -> SMILES."""

    def __init__(self, tokens: Sequence[str] = MOSES_TOKENS, length: int = LENGTH):
        self.vocab = (PAD, *tokens, MASK)
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.length = length

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def pad_index(self) -> int:
        return self.index[PAD]

    @property
    def mask_index(self) -> int:
        return self.index[MASK]

    def split(self, smiles: str) -> list[str]:
        """The tokens of ``smiles``; :class:`TokenError` if the regex does not cover it exactly."""
        tokens = SMILES_PATTERN.findall(smiles)
        if "".join(tokens) != smiles:
            raise TokenError(f"cannot tokenise SMILES {smiles!r}")
        return tokens

    def encode(self, smiles: str) -> list[int]:
        """``length`` ids: the tokens of ``smiles`` then ``<pad>``."""
        tokens = self.split(smiles)
        if len(tokens) > self.length:
            raise TokenError(f"SMILES {smiles!r} has {len(tokens)} tokens, more than {self.length}")
        unknown = [t for t in tokens if t not in self.index or t in (PAD, MASK)]
        if unknown:
            raise TokenError(f"SMILES {smiles!r} has token {unknown[0]!r}, not in the vocabulary")
        return [self.index[t] for t in tokens] + [self.pad_index] * (self.length - len(tokens))

    def symbols(self, ids: Iterable[int]) -> Optional[list[str]]:
        """The tokens up to the first ``<pad>``; None when a ``<mask>`` is left among them."""
        out = []
        for i in ids:
            token = self.vocab[int(i)]
            if token == PAD:
                break
            if token == MASK:
                return None
            out.append(token)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """The SMILES up to the first ``<pad>`` (``?``, never valid, when a ``<mask>`` is left)."""
        symbols = self.symbols(ids)
        return "?" if symbols is None else "".join(symbols)

    def config(self) -> dict:
        """JSON-serialisable settings (stored with a model)."""
        return {"kind": "smiles", "tokens": list(self.vocab[1:-1]), "length": self.length}

    @classmethod
    def from_config(cls, config: dict) -> "SmilesTokenizer":
        """The tokenizer :meth:`config` describes (missing entries: the MOSES defaults)."""
        if config.get("kind", "smiles") != "smiles":
            raise ValueError(f"unknown tokenizer kind {config.get('kind')!r}")
        return cls(tuple(config.get("tokens", MOSES_TOKENS)), int(config.get("length", LENGTH)))


class SelfiesTokenizer(SmilesTokenizer):
    """Like :class:`SmilesTokenizer`, over the SELFIES form: ``encode`` takes SMILES, ``decode`` returns
    the SMILES of the decoded SELFIES (always a valid molecule unless a ``<mask>`` is left)."""

    def __init__(self, tokens: Sequence[str] = MOSES_SELFIES, length: int = LENGTH):
        super().__init__(tokens, length)

    def split(self, smiles: str) -> list[str]:
        import selfies

        try:
            return list(selfies.split_selfies(selfies.encoder(smiles, strict=True)))
        except selfies.EncoderError as err:
            raise TokenError(f"cannot write SMILES {smiles!r} as SELFIES ({err})") from None

    def decode(self, ids: Iterable[int]) -> str:
        import selfies

        symbols = self.symbols(ids)
        if symbols is None:
            return "?"
        try:
            return selfies.decoder("".join(symbols)) or ""
        except selfies.DecoderError:
            return "?"

    def config(self) -> dict:
        return {**super().config(), "kind": "selfies"}

    @classmethod
    def from_config(cls, config: dict) -> "SelfiesTokenizer":
        return cls(tuple(config.get("tokens", MOSES_SELFIES)), int(config.get("length", LENGTH)))


def tokenizer_from_config(config: dict) -> SmilesTokenizer:
    """The tokenizer a model's ``extra["tokenizer"]`` describes (``kind``: smiles or selfies)."""
    kinds = {"smiles": SmilesTokenizer, "selfies": SelfiesTokenizer}
    kind = config.get("kind", "smiles")
    if kind not in kinds:
        raise ValueError(f"unknown tokenizer kind {kind!r}; choose from {', '.join(kinds)}")
    return kinds[kind].from_config(config)

"""``MoleculeGenerator``: SMILES from the masked diffusion model, optionally steered by a reward.

    from science.molecules import MoleculeGenerator
    gen = MoleculeGenerator.from_pretrained()                     # the shipped model, never downloads
    out = gen.sample(1000)                                        # unguided
    out = gen.sample(1000, reward="qed", guidance="svdd", reward_calls=32)
    out.smiles, out.valid, out.rewards["qed"]

Guidance spends ``reward_calls`` reward evaluations per molecule, the same for both methods:

* ``svdd`` (:func:`shared.guidance.sample_value_guided`): ``G = reward_calls // M`` evenly spaced
  decisions on the ``num_inference_steps`` (``N``) grid; at each, ``candidates`` (``M``) rollouts to
  the next decision, each scored by the reward of its one-step x0 estimate there, one kept by
  ``softmax(v / alpha)`` (``alpha = 0``: argmax); ``M`` is lowered to ``reward_calls`` when the budget
  is smaller (default ``M = 8``: with 8 reward calls one decision, which is best-of-8; with 32, four). It
  costs ``1 + M (N - 1)`` network evaluations per molecule, best-of-N ``reward_calls N``;
* ``best-of-n`` (:func:`shared.guidance.best_of_n`): ``reward_calls`` independent molecules, the best kept.

Rewards: :mod:`science.molecules.rewards` (``qed``, ``sa``, ``logp``, ``module:function`` or a callable).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from shared.checkpoints import load_denoiser
from shared.files import InputError, device_from_string
from shared.guidance import best_of_n, sample_value_guided
from shared.pipeline import Pipeline, as_dtype
from shared.samplers import sample

from . import rewards as reward_functions
from .metrics import canonical
from .tokens import SmilesTokenizer, tokenizer_from_config

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "mdlm"
GUIDANCE = ("none", "svdd", "best-of-n")


@dataclass
class Molecules:
    """Sampled molecules and what they cost (per molecule).

    ``smiles``: the decoded strings (canonical when valid); ``valid``: rdkit parses them;
    ``rewards``: name -> score per molecule (:data:`rewards.FLOOR` when invalid).
    """

    smiles: list[str]
    valid: list[bool]
    rewards: dict[str, np.ndarray] = field(default_factory=dict)
    network_evaluations: float = 0.0
    reward_calls: float = 0.0
    seconds: float = 0.0


class MoleculeGenerator(Pipeline):
    """Unconditional SMILES generation with a masked diffusion model, with reward steering."""

    def __init__(self, model, tokenizer: SmilesTokenizer, device: torch.device | str = "cpu",
                 torch_dtype=torch.float32):
        self.model, self.tokenizer = model, tokenizer
        self.to(device, torch_dtype)

    def modules(self):
        return iter([self.model])

    @classmethod
    def from_pretrained(cls, path: Optional[str | os.PathLike] = None, device: str = "auto",
                        torch_dtype=torch.float32) -> "MoleculeGenerator":
        """Load local weights (``path`` None: the shipped model); never downloads."""
        folder = DEFAULT_MODEL if path is None else Path(path)
        if not (folder / "model.json").is_file():
            raise InputError(f"{folder}: no molecule model there (model.json missing)")
        model, meta = load_denoiser(folder, device=device_from_string(device))
        tokenizer = tokenizer_from_config(meta["extra"].get("tokenizer", {}))
        return cls(model, tokenizer, device_from_string(device), as_dtype(torch_dtype))

    # ----------------------------------------------------------------- pieces
    def decode(self, tokens: torch.Tensor) -> list[str]:
        """SMILES of token rows ``(B, L)`` (canonical when valid, else as decoded)."""
        out = []
        for row in tokens.tolist():
            raw = self.tokenizer.decode(row)
            out.append(canonical(raw) or raw)
        return out

    def token_reward(self, reward: Callable[[str], float]) -> Callable[[torch.Tensor], torch.Tensor]:
        """``reward`` on SMILES as a reward on token rows (``(B,)`` float tensor)."""
        def score(tokens: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(reward_functions.score(self.decode(tokens), reward))
        return score

    def _denoise(self, y: torch.Tensor):
        return lambda x_t, t: self.model(x_t, t, y, None)

    # ----------------------------------------------------------------- sampling
    @torch.no_grad()
    def sample(self, n: int, *, reward: Union[str, Callable[[str], float], None] = None, guidance: str = "none",
               reward_calls: int = 32, candidates: int = 8, alpha: float = 0.0,
               num_inference_steps: Optional[int] = None, batch_size: int = 256,
               generator: Optional[torch.Generator] = None,
               progress: Optional[Callable[[int], None]] = None) -> Molecules:
        """``n`` molecules (see the module docstring); ``progress(k)`` after every batch of ``k``.
        Every named reward is reported; ``reward`` also steers when ``guidance`` is not ``none``."""
        start = time.perf_counter()
        if int(n) < 1:
            raise InputError(f"n must be >= 1, got {n}")
        if guidance not in GUIDANCE:
            raise InputError(f"unknown guidance {guidance!r}; choose from {', '.join(GUIDANCE)}")
        if guidance != "none" and reward is None:
            raise InputError(f"guidance {guidance!r} needs a reward")
        if guidance != "none" and int(reward_calls) < 1:
            raise InputError(f"reward_calls must be >= 1, got {reward_calls}")
        try:
            name, fn = reward_functions.resolve(reward) if reward is not None else (None, None)
        except ValueError as err:
            raise InputError(str(err)) from None
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        tokens, nfe, calls = [], 0, 0
        for first in range(0, int(n), batch_size):
            b = min(batch_size, int(n) - first)
            y = torch.full((b, self.tokenizer.length), self.tokenizer.mask_index, device=self.device)
            x, used_nfe, used_calls = self._batch(y, fn, guidance, int(reward_calls), int(candidates), float(alpha),
                                                  num_inference_steps, generator)
            tokens.append(x.cpu())
            nfe, calls = nfe + used_nfe * b, calls + used_calls * b
            if progress is not None:
                progress(b)
        smiles = self.decode(torch.cat(tokens))
        valid = [canonical(s) is not None for s in smiles]
        scores = {key: reward_functions.score(smiles, key) for key in reward_functions.REWARDS}
        if name is not None and name not in scores:
            scores[name] = reward_functions.score(smiles, fn)
        return Molecules(smiles, valid, scores, nfe / int(n), calls / int(n), time.perf_counter() - start)

    def _batch(self, y, reward, guidance, reward_calls, candidates, alpha, steps, generator):
        """``(tokens, evaluations per molecule, reward calls per molecule)`` of one batch."""
        denoise, process = self._denoise(y), self.model.process
        if guidance == "none":
            x, used = sample(denoise, process, y, num_inference_steps=steps, generator=generator)
            return x, used, 0
        token_reward = self.token_reward(reward)
        if guidance == "best-of-n":
            x, counts = best_of_n(denoise, process, y, token_reward, reward_calls, generator=generator,
                                  num_inference_steps=steps)
        else:
            m = min(candidates, reward_calls)
            x, counts = sample_value_guided(denoise, process, y, token_reward, candidates=m, alpha=alpha,
                                            num_inference_steps=steps, generator=generator,
                                            decode=process.x0_tokens, guided_steps=reward_calls // m)
        return x, counts.network_evaluations, counts.reward_calls

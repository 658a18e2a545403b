"""A small bidirectional transformer over token sequences: the backbone of discrete (masked) diffusion.

``TokenTransformer(vocab_size, length, width, layers, heads)``: token embedding + learned position
embedding, ``layers`` pre-norm encoder blocks (``torch.nn.TransformerEncoderLayer``, GELU, no causal
mask: every position sees every other, as MDLM's DiT), a final LayerNorm and a linear read-out to
``vocab_size`` logits per position::

    h_0 = E[x] + P,   h_{k+1} = Block_k(h_k),   logits = W LN(h_K) + b       (B, L, V)

The timestep is accepted and ignored: for absorbing-state diffusion the clean-token posterior does
not depend on ``t`` given which tokens are masked (MDLM, Sahoo et al. 2024, sec. 3.2: time
conditioning is not needed), so the model is ``f(x_t)``. A diffusers model (``forward(sample,
timestep).sample``), in the checkpoint registry (:mod:`shared.checkpoints`); knows nothing about what the tokens mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.utils import BaseOutput
from torch import nn


@dataclass
class TokenTransformerOutput(BaseOutput):
    """``sample``: logits ``(B, L, vocab_size)``."""

    sample: torch.Tensor


class TokenTransformer(ModelMixin, ConfigMixin):
    """Bidirectional transformer encoder from tokens ``(B, L)`` to logits ``(B, L, V)``."""

    @register_to_config
    def __init__(self, vocab_size: int, length: int = 64, width: int = 256, layers: int = 6, heads: int = 4,
                 dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.zeros(1, length, width))
        nn.init.normal_(self.position, std=0.02)
        block = nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def forward(self, sample: torch.Tensor, timestep=None, return_dict: bool = True):
        length = sample.shape[-1]
        if length > self.position.shape[1]:
            raise ValueError(f"sequence of {length} tokens is longer than the model's {self.position.shape[1]}")
        h = self.embed(sample.long()) + self.position[:, :length]
        logits = self.head(self.norm(self.blocks(h)))
        return TokenTransformerOutput(sample=logits) if return_dict else (logits,)

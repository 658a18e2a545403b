"""The CharRNN baseline of the molecule benchmark (MOSES's strongest baseline, Segler et al. 2018):
an LSTM language model over the same SMILES tokens, trained with the same data, batch and steps as
``molecules_mdlm.yaml`` and sized to the same parameter count (``molecules_charrnn.yaml``).

Sequence: ``<bos> t_1 .. t_n <pad>`` (``<bos>`` reuses the tokenizer's ``<mask>`` id, which a left-to-right
model never needs; the first ``<pad>`` ends the molecule). Loss: next-token cross-entropy up to and
including the first ``<pad>``. Sampling: ancestral, temperature 1, until ``<pad>`` or the length.
Exported as safetensors + JSON (``model.safetensors``, ``config.json``); never pickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from shared.training.base import ExportingModule


class CharRNN(ExportingModule):
    """LSTM over token sequences (a baseline; see the module docstring)."""

    def __init__(self, vocab_size: int = 26, length: int = 56, hidden: int = 256, layers: int = 2,
                 dropout: float = 0.0, lr: float = 1e-3, warmup_steps: int = 500, val_samples: int = 256,
                 val_metrics: Optional[dict[str, str]] = None, export_dir: Optional[str] = None,
                 export_every_n_steps: int = 500):
        super().__init__()
        self.save_hyperparameters()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden, vocab_size)
        self.bos = vocab_size - 1
        self.pad = 0

    def logits(self, tokens: torch.Tensor, state=None):
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(out), state

    def training_step(self, batch, batch_idx):
        x = batch["x0"]
        inputs = torch.cat([torch.full_like(x[:, :1], self.bos), x[:, :-1]], dim=1)
        logits, _ = self.logits(inputs)
        ended = (x == self.pad).long().cumsum(1)                 # positions after the first <pad> do not count
        keep = (ended == 0) | ((ended == 1) & (x == self.pad))
        loss = nn.functional.cross_entropy(logits[keep], x[keep])
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        return loss

    @torch.no_grad()
    def generate(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` sampled sequences ``(n, length)``, ``<pad>`` after the end."""
        tokens = torch.full((n, 1), self.bos, dtype=torch.long, device=self.device)
        out = torch.full((n, self.hparams.length), self.pad, dtype=torch.long, device=self.device)
        done = torch.zeros(n, dtype=torch.bool, device=self.device)
        state = None
        for i in range(self.hparams.length):
            logits, state = self.logits(tokens, state)
            probs = torch.softmax(logits[:, -1].float(), dim=-1)
            probs[:, self.bos] = 0
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = torch.where(done, torch.full_like(nxt, self.pad), nxt)
            out[:, i] = nxt
            done |= nxt == self.pad
            tokens = nxt[:, None]
            if done.all():
                break
        return out

    def validation_step(self, batch, batch_idx):
        x = self.generate(self.hparams.val_samples, torch.Generator().manual_seed(batch_idx))
        self.log_metrics(x, batch["x0"][: len(x)])

    def configure_optimizers(self):
        return self.warmup_adamw(self.parameters())

    def export(self, directory: Optional[str] = None) -> Path:
        from safetensors.torch import save_file

        target = Path(directory or self.hparams.export_dir)
        target.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(target / "model.safetensors"))
        config = {k: self.hparams[k] for k in ("vocab_size", "length", "hidden", "layers")}
        (target / "config.json").write_text(json.dumps({**config, "global_step": int(self.global_step)}, indent=2))
        return target

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> "CharRNN":
        from safetensors.torch import load_file

        directory = Path(directory)
        config = json.loads((directory / "config.json").read_text())
        config.pop("global_step", None)
        model = cls(**config)
        model.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model.eval()

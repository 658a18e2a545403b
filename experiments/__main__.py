"""LightningCLI entry: ``python -m experiments fit --config experiments/<vertical>/<model>.yaml``.

Any LightningModule / LightningDataModule of the suite is selected by ``class_path`` in the config;
trainer settings (strategy, devices, precision, max_steps, ...) come from the config or the command
line, e.g. ``--trainer.strategy=ddp --trainer.devices=2``.
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LightningCLI


def main(args=None) -> None:
    torch.set_float32_matmul_precision("high")
    LightningCLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()

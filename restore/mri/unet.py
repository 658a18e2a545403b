"""The fastMRI U-Net (Ronneberger et al. 2015, as in Zbontar et al. 2018) as a registered backbone.

``fastmri.models.Unet`` (instance norm, leaky ReLU, ``2 ** num_pool_layers * chans`` channels at the
bottom; any even image size) wrapped as a diffusers model, ``forward(sample, timestep).sample``, so it
trains, saves and loads through the shared core with :class:`shared.processes.DirectPrediction`: the
predictive baseline of the MRI benchmark (``experiments/restore/mri_unet.yaml``). The timestep is
ignored (a regression network has one step). Importing this module registers the class.
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.unets.unet_2d import UNet2DOutput

from shared.checkpoints import register_backbone


@register_backbone
class FastMRIUnet(ModelMixin, ConfigMixin):
    """``fastmri.models.Unet(in_channels, out_channels, chans, num_pool_layers, drop_prob)``."""

    @register_to_config
    def __init__(self, in_channels: int = 3, out_channels: int = 2, chans: int = 32, num_pool_layers: int = 4,
                 drop_prob: float = 0.0):
        super().__init__()
        from fastmri.models import Unet

        self.unet = Unet(in_channels, out_channels, chans=chans, num_pool_layers=num_pool_layers,
                         drop_prob=drop_prob)

    def forward(self, sample: torch.Tensor, timestep=None, return_dict: bool = True):
        out = self.unet(sample)
        return UNet2DOutput(sample=out) if return_dict else (out,)

"""A small 1-D backbone for series ``(B, C, L)`` of any length: dilated residual convolutions.

``SeriesUNet(in_channels, out_channels, width, layers, kernel_size, dilation_cycle)``::

    e      = MLP(sinusoid(t))                                   time embedding (diffusers' Timesteps + TimestepEmbedding)
    h_0    = Conv1x1(x)                                         (B, width, L)
    h_k+1  = h_k + Conv1x1(SiLU(GN(Conv_k,d_k(SiLU(GN(h_k))) + W_k e)))     d_k = 2^(k mod dilation_cycle)
    out    = Conv1x1(SiLU(GN(h_K)))                             (B, out_channels, L)

Every convolution keeps the length (odd kernel, ``padding = d (kernel_size - 1) / 2``), so any ``L >= 1``
works and :attr:`grid_multiple` is 1; with kernel 3 the receptive field is ``1 + 2 sum_k d_k`` (511 for the
default 8 layers, dilations 1..128: the whole window of the 64-256-step series it is meant for). It is a
diffusers model (``ModelMixin``/``ConfigMixin``, ``forward(sample, timestep).sample``) registered in
:data:`shared.checkpoints.BACKBONES`, and plugs into :class:`shared.denoiser.ConditionalDenoiser` with
``unshuffle = 1`` (channels concatenated along dim 1 as for images). The name says what it stands in for
(the suite's ``UNet2DModel`` of images); it does not down-sample.

Why not ``diffusers.UNet1DModel`` (measured with diffusers 0.42): its defaults do not run (the Fourier time
embedding is concatenated to the input as ``extra_in_channels`` that must be set by hand to the embedding
width), lengths must be multiples of the total down-sampling (65 and 100 fail, 64 and 96 pass), and its
down-sampling factor is not ``2^(len(block_out_channels) - 1)``, which is what
:attr:`ConditionalDenoiser.grid_multiple` assumes of a diffusers UNet. A series model wants windows of any
length, and TSDiff's own backbone (stacked residual S4 layers) does not down-sample either; dilated
convolutions (WaveNet/DiffWave style) give the same whole-window receptive field with plain ``torch``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.utils import BaseOutput
from torch import nn


@dataclass
class SeriesUNetOutput(BaseOutput):
    """``sample``: the network output ``(B, out_channels, L)``."""

    sample: torch.Tensor


def _groups(channels: int, wanted: int) -> int:
    """The largest divisor of ``channels`` that is at most ``wanted`` (GroupNorm needs one)."""
    return max(g for g in range(1, min(wanted, channels) + 1) if channels % g == 0)


class ResidualBlock(nn.Module):
    """``h + Conv1x1(SiLU(GN(Conv_d(SiLU(GN(h))) + W e)))``: one dilated residual layer with the time added."""

    def __init__(self, width: int, embed_dim: int, kernel_size: int, dilation: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, width)
        self.conv1 = nn.Conv1d(width, width, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2)
        self.time = nn.Linear(embed_dim, width)
        self.norm2 = nn.GroupNorm(groups, width)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(width, width, 1)
        self.act = nn.SiLU()

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        r = self.conv1(self.act(self.norm1(h))) + self.time(emb)[:, :, None]
        return h + self.conv2(self.dropout(self.act(self.norm2(r))))


class SeriesUNet(ModelMixin, ConfigMixin):
    """Dilated residual 1-D network from ``(B, in_channels, L)`` to ``(B, out_channels, L)`` (module docstring).

    Args:
        in_channels, out_channels: channels of the input (state, plus ``y`` / conditioning when concatenated)
            and of the output.
        width: channels inside the network.
        layers: residual blocks.
        kernel_size: odd kernel of the dilated convolutions.
        dilation_cycle: dilations ``2^(k mod dilation_cycle)`` for block ``k``.
        norm_num_groups: GroupNorm groups (reduced to a divisor of ``width``).
        dropout: inside each block.
    """

    @register_to_config
    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 64, layers: int = 8,
                 kernel_size: int = 3, dilation_cycle: int = 8, norm_num_groups: int = 8, dropout: float = 0.0):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        if layers < 1 or dilation_cycle < 1 or width < 1:
            raise ValueError("layers, dilation_cycle and width must be >= 1")
        embed_dim = 4 * width
        groups = _groups(width, norm_num_groups)
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(width, embed_dim)
        self.conv_in = nn.Conv1d(in_channels, width, 1)
        self.blocks = nn.ModuleList(
            ResidualBlock(width, embed_dim, kernel_size, 2 ** (k % dilation_cycle), groups, dropout)
            for k in range(layers))
        self.norm_out = nn.GroupNorm(groups, width)
        self.act = nn.SiLU()
        self.conv_out = nn.Conv1d(width, out_channels, 1)   # registered last: training's ``zero_output`` zeroes it

    @property
    def grid_multiple(self) -> int:
        """Lengths need no multiple: every layer keeps the length."""
        return 1

    @property
    def receptive_field(self) -> int:
        """Positions one output sees: ``1 + (kernel_size - 1) sum_k d_k``."""
        c = self.config
        return 1 + (c.kernel_size - 1) * sum(2 ** (k % c.dilation_cycle) for k in range(c.layers))

    def forward(self, sample: torch.Tensor, timestep, return_dict: bool = True):
        if sample.ndim != 3:
            raise ValueError(f"SeriesUNet takes (B, C, L) series, got shape {tuple(sample.shape)}")
        t = torch.as_tensor(timestep, device=sample.device)
        if t.ndim == 0:
            t = t.expand(sample.shape[0])
        emb = self.time_embedding(self.time_proj(t.float()).to(sample.dtype))
        h = self.conv_in(sample)
        for block in self.blocks:
            h = block(h, emb)
        out = self.conv_out(self.act(self.norm_out(h)))
        return SeriesUNetOutput(sample=out) if return_dict else (out,)

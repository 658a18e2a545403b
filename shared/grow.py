"""Function-preserving growth of a trained diffusers ``UNet2DModel`` (Net2DeeperNet, Chen et al. 2016).

A deeper network can start from a trained shallower one instead of from scratch: every resnet block of the
source is copied, and each added block starts as the identity, so the grown network computes exactly the
source's function before training.

A diffusers ``ResnetBlock2D`` computes ``out = shortcut(x) + conv2(h(x, t))``. With ``conv2 = 0`` it returns
``shortcut(x)``: ``x`` itself in a down block (same channels in and out), and in an up block, whose input is
``[hidden, skip]`` concatenated, a 1x1 shortcut ``[I | 0]`` that passes ``hidden`` and drops the skip.

Skips line up because an added down block repeats the last block's output: a down block of ``L'`` resnets grown
from ``L`` emits the skips ``r_1 .. r_L, r_L (L' - L times), down``, and the mirrored up block, consuming them in
reverse, meets ``r_L`` first (its source block 0), then the ``L' - L`` repeats (the identity blocks), then the
source's remaining skips in the source's order (its source blocks 1 .. L)::

    up block resnets:  [src_0, identity x (L' - L), src_1, .., src_L]
"""

from __future__ import annotations

import torch
from torch import nn

#: the block types whose resnets alone make the block (no attention to grow)
PLAIN_BLOCKS = {"DownBlock2D", "UpBlock2D"}


def _growable(unet: nn.Module) -> None:
    config = unet.config
    blocks = set(config.down_block_types) | set(config.up_block_types)
    if not blocks <= PLAIN_BLOCKS:
        raise ValueError(f"can only grow UNets of {sorted(PLAIN_BLOCKS)}, got {sorted(blocks - PLAIN_BLOCKS)}")


def _same_but_depth(source: nn.Module, target: nn.Module) -> None:
    a, b = dict(source.config), dict(target.config)
    a.pop("layers_per_block"), b.pop("layers_per_block")
    differ = sorted(k for k in set(a) | set(b) if not k.startswith("_") and a.get(k) != b.get(k))
    if differ:
        raise ValueError(f"the grown UNet must differ from its source only in layers_per_block, not in {differ}")


def _grown(key: str) -> bool:
    """Whether a state-dict key belongs to a down or up block's resnets (the part that grows)."""
    return key.startswith(("down_blocks.", "up_blocks.")) and ".resnets." in key


def _identity(block: nn.Module) -> None:
    """Make a ``ResnetBlock2D`` return ``x`` (or the first ``out_channels`` of ``x`` through its 1x1 shortcut)."""
    block.conv2.weight.zero_()
    block.conv2.bias.zero_()
    if block.conv_shortcut is not None:
        weight = block.conv_shortcut.weight            # (out, in, 1, 1)
        out = weight.shape[0]
        weight.zero_()
        weight[:, :out, 0, 0] = torch.eye(out)
        block.conv_shortcut.bias.zero_()


def _copy_or_identity(block: nn.Module, source: nn.Module | None) -> None:
    if source is None:
        _identity(block)
    else:
        block.load_state_dict(source.state_dict())


@torch.no_grad()
def deepen_unet(source: nn.Module, target: nn.Module) -> nn.Module:
    """Load ``source`` (``layers_per_block = L``) into ``target`` (``L' >= L``, otherwise the same config) so that
    ``target`` computes exactly ``source``'s function; returns ``target``."""
    for unet in (source, target):
        _growable(unet)
    _same_but_depth(source, target)
    grow = target.config.layers_per_block - source.config.layers_per_block
    if grow < 0:
        raise ValueError("the target UNet has fewer layers per block than its source")
    state = {k: v for k, v in source.state_dict().items() if not _grown(k)}
    result = target.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not _grown(k)]
    if missing or result.unexpected_keys:
        raise ValueError(f"the UNets do not match outside their resnets: {missing + result.unexpected_keys}")
    for s, t in zip(source.down_blocks, target.down_blocks):
        sources = list(s.resnets) + [None] * grow
        for block, src in zip(t.resnets, sources):
            _copy_or_identity(block, src)
    for s, t in zip(source.up_blocks, target.up_blocks):
        sources = [s.resnets[0]] + [None] * grow + list(s.resnets[1:])
        for block, src in zip(t.resnets, sources):
            _copy_or_identity(block, src)
    return target

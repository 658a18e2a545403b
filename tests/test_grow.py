"""shared.grow: a UNet grown deeper from a trained one computes exactly its function, and bad pairs fail clearly."""

import pytest
import torch
from diffusers import UNet2DModel

from shared.checkpoints import load_denoiser
from shared.grow import deepen_unet

PLAIN = dict(in_channels=3, out_channels=2, block_out_channels=[8, 16, 24], norm_num_groups=4, add_attention=False,
             down_block_types=["DownBlock2D"] * 3, up_block_types=["UpBlock2D"] * 3)


def _trained(layers: int = 1, **changes) -> UNet2DModel:
    """A UNet whose every weight is random (a stand-in for a trained one: no zero-initialised layers)."""
    torch.manual_seed(0)
    unet = UNet2DModel(layers_per_block=layers, **{**PLAIN, **changes})
    for p in unet.parameters():
        p.data.normal_(0, 0.1)
    return unet


@pytest.mark.parametrize("source,target", [(1, 1), (1, 2), (1, 3), (2, 3)])
def test_grown_unet_computes_the_source_function(source, target):
    small = _trained(source)
    grown = deepen_unet(small, UNet2DModel(layers_per_block=target, **PLAIN))
    x, t = torch.randn(2, 3, 16, 24), torch.tensor([0.0, 7.0])
    with torch.no_grad():
        assert torch.allclose(grown(x, t).sample, small(x, t).sample, atol=1e-6)
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in small.parameters()) or source == target


def test_grown_blocks_learn():
    """The added blocks start as the identity through a zero conv2, whose gradient is not zero."""
    grown = deepen_unet(_trained(1), UNet2DModel(layers_per_block=2, **PLAIN))
    grown(torch.randn(2, 3, 16, 24), torch.zeros(2)).sample.square().mean().backward()
    added = grown.down_blocks[0].resnets[1].conv2
    assert torch.all(added.weight == 0) and added.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("changes,message", [
    (dict(block_out_channels=[8, 16, 32]), "only in layers_per_block"),
    (dict(down_block_types=["DownBlock2D", "AttnDownBlock2D", "DownBlock2D"]), "can only grow"),
])
def test_unmatched_or_attention_unets_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        deepen_unet(_trained(1), UNet2DModel(layers_per_block=2, **{**PLAIN, **changes}))


def test_shallower_target_is_refused():
    with pytest.raises(ValueError, match="fewer layers"):
        deepen_unet(_trained(2), UNet2DModel(layers_per_block=1, **PLAIN))


def test_diffusion_module_grows_shallower_init_weights(tiny_audio_weights):
    """``init_weights`` of a shallower UNet: the module starts at exactly the shipped model's output."""
    from shared.training import ConditionalDiffusionModule

    source = load_denoiser(tiny_audio_weights / "predictive")[0]
    backbone = {k: v for k, v in source.backbone.config.items() if not k.startswith("_")}
    backbone = {"class": "UNet2DModel", **backbone, "layers_per_block": backbone["layers_per_block"] + 1}
    module = ConditionalDiffusionModule(backbone, {"class": "DirectPrediction"}, unshuffle=2,
                                        init_weights=str(tiny_audio_weights / "predictive"))
    y, t = torch.randn(1, 2, 32, 32), torch.zeros(1, dtype=torch.long)
    cond = torch.ones(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(module.denoiser(y, t, y, cond), source(y, t, y, cond), atol=1e-5)
    assert module.denoiser.backbone.config.layers_per_block == source.backbone.config.layers_per_block + 1

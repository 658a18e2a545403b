"""The 1-D backbone (:mod:`shared.backbone1d`): any length, diffusers config, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch

from shared.backbone1d import SeriesUNet
from shared.checkpoints import BACKBONES, load_denoiser, save_denoiser
from shared.denoiser import ConditionalDenoiser
from shared.processes import GaussianDiffusion, ResShiftScheduler
from shared.sde import OUVEScheduler
from shared.training.base import build_denoiser, zero_output_layer

torch.set_num_threads(1)


def tiny(in_channels=2, out_channels=2, seed=0) -> SeriesUNet:
    torch.manual_seed(seed)
    return SeriesUNet(in_channels=in_channels, out_channels=out_channels, width=16, layers=4, norm_num_groups=4).eval()


def test_registered():
    assert BACKBONES["SeriesUNet"] is SeriesUNet


@pytest.mark.parametrize("length", [1, 7, 64, 65, 129, 256])
def test_shape_round_trip_any_length(length):
    net = tiny()
    x = torch.randn(3, 2, length)
    out = net(x, torch.tensor([0, 10, 999])).sample
    assert out.shape == (3, 2, length) and torch.isfinite(out).all()
    # a scalar timestep is broadcast over the batch
    torch.testing.assert_close(net(x, torch.tensor(10)).sample[1], net(x, torch.tensor([0, 10, 999])).sample[1])
    assert net.grid_multiple == 1


def test_time_changes_the_output_and_bad_input_is_refused():
    net = tiny()
    x = torch.randn(2, 2, 32)
    assert not torch.allclose(net(x, torch.tensor(1)).sample, net(x, torch.tensor(500)).sample)
    with pytest.raises(ValueError, match=r"\(B, C, L\)"):
        net(torch.randn(2, 2, 4, 4), torch.tensor(1))
    with pytest.raises(ValueError, match="odd"):
        SeriesUNet(kernel_size=4)


def test_receptive_field_of_the_default():
    assert SeriesUNet().receptive_field == 1 + 2 * (2**8 - 1)


@pytest.mark.parametrize("process", [ResShiftScheduler(), GaussianDiffusion(num_train_timesteps=50), OUVEScheduler()],
                         ids=lambda p: type(p).__name__)
def test_conditional_denoiser_on_series(process):
    """``unshuffle = 1`` and ``concat_y`` along channels: (B, C, L) in, the x0 estimate (B, C, L) out."""
    den = ConditionalDenoiser(tiny(in_channels=2, out_channels=1), process, skip=0.0, concat_y=True).eval()
    assert den.grid_multiple == 1
    x, y = torch.randn(2, 1, 37), torch.randn(2, 1, 37)
    t = process.timesteps[:1].expand(2)
    with torch.no_grad():
        assert den(x, t, y).shape == (2, 1, 37)


def test_save_load_round_trip(tmp_path):
    den = ConditionalDenoiser(tiny(in_channels=1, out_channels=1), GaussianDiffusion(num_train_timesteps=50),
                              skip=0.0).eval()
    x, y = torch.randn(2, 1, 33), torch.zeros(2, 1, 33)
    t = torch.tensor([3, 40])
    with torch.no_grad():
        before = den(x, t, y)
        save_denoiser(den, tmp_path / "m32", dtype=torch.float32)
        loaded, meta = load_denoiser(tmp_path / "m32")
        assert meta["backbone_class"] == "SeriesUNet"
        settings = lambda m: {k: v for k, v in m.config.items() if not k.startswith("_")}  # noqa: E731
        assert settings(loaded.backbone) == settings(den.backbone)
        assert torch.equal(loaded(x, t, y), before)
        save_denoiser(den, tmp_path / "m16")   # the default half-precision weights
        half, _ = load_denoiser(tmp_path / "m16")
        torch.testing.assert_close(half(x, t, y), before, rtol=2e-2, atol=2e-2)


def test_built_from_a_plain_dict_and_zero_output():
    den = build_denoiser({"class": "SeriesUNet", "in_channels": 1, "out_channels": 1, "width": 8, "layers": 2},
                         {"class": "GaussianDiffusion", "num_train_timesteps": 20}, skip=0.0)
    zero_output_layer(den.backbone)
    assert torch.count_nonzero(den.backbone.conv_out.weight) == 0
    assert torch.count_nonzero(den.backbone(torch.randn(1, 1, 9), torch.tensor(3)).sample) == 0

"""The preconditioning wrapper: input layout, scaling and the skip connection."""

import math

import torch
import torch.nn.functional as F

from shared.denoiser import ConditionalDenoiser
from shared.processes import ResShiftScheduler


class Recorder(torch.nn.Module):
    """A fake backbone that records its input and returns zeros of 48 channels."""

    def forward(self, h, time):
        self.h, self.time = h, time
        return type("Out", (), {"sample": torch.zeros(h.shape[0], 48, *h.shape[-2:])})()


def test_backbone_input_layout_scaling_and_skip():
    rec = Recorder()
    d = ConditionalDenoiser(rec, ResShiftScheduler(), unshuffle=4, skip=1.0, concat_y=True)
    x, y = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    cond = torch.randn(2, 3, 4, 4)
    t = torch.tensor([3, 0])
    out = d(x, t, y, cond)
    assert rec.h.shape == (2, 48 + 48 + 3, 4, 4)
    c_in = 1 / math.sqrt(4 * 0.99**2 + 1)
    torch.testing.assert_close(rec.h[0, :48], F.pixel_unshuffle(x, 4)[0] * c_in)
    torch.testing.assert_close(rec.h[:, 48:96], F.pixel_unshuffle(y, 4))
    torch.testing.assert_close(rec.h[:, 96:], cond)
    assert rec.time.tolist() == [3.0, 0.0]
    torch.testing.assert_close(out, y)  # zero correction -> x0_hat = y


def test_no_skip_returns_raw_output_and_grid_mismatch_is_reported():
    d = ConditionalDenoiser(Recorder(), ResShiftScheduler(), unshuffle=4, skip=0.0)
    x = torch.randn(1, 3, 8, 8)
    assert d(x, torch.tensor([1]), x).abs().max() == 0
    try:
        d(x, torch.tensor([1]), x, torch.randn(1, 3, 4, 4))
    except ValueError as err:
        assert "does not match" in str(err)
    else:
        raise AssertionError("expected a grid mismatch error")

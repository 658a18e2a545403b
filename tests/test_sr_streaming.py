"""Super-resolution output streamed in row bands (issue 12: memory bounded by design)."""

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from restore.sr.colorfix import ChannelStats, adain, color_fix
from restore.sr.degradations import bicubic_up
from restore.sr.streaming import ROWS, assemble, bicubic_rows, dequantise, quantise, upscale_alpha
from shared.tiling import tiled_apply, tiled_bands


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("start,stop", [(0, 7), (5, 41), (64, 128), (100, 160), (0, 160)])
def test_bicubic_rows_equal_slicing_the_whole_upsampling(scale, start, stop):
    lr = torch.rand(1, 3, 40, 23)
    whole = bicubic_up(lr, scale).clamp(0, 1)
    start, stop = min(start, 40 * scale - 1), min(stop, 40 * scale)
    assert torch.equal(bicubic_rows(lr, scale, start, stop), whole[..., start:stop, :])


def test_channel_stats_match_torch():
    x = torch.rand(3, 50, 40)
    stats = ChannelStats()
    for band in x.split(7, dim=1):
        stats.update(band)
    torch.testing.assert_close(stats.mean, x.mean((-2, -1), keepdim=True))
    torch.testing.assert_close(stats.std, x.std((-2, -1), keepdim=True))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16, torch.float32])
def test_quantise_round_trip(dtype):
    x = torch.rand(3, 8, 8)
    q = quantise(x, dtype)
    assert q.dtype == dtype
    step = 1.0 / 255 if dtype == torch.uint8 else 1.0 / 65535 if dtype == torch.uint16 else 0.0
    assert (dequantise(q) - x).abs().max() <= step / 2 + 1e-7


def test_tiled_bands_stream_the_tiled_result_in_order():
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    x = torch.rand(1, 3, 37, 53)
    fn = lambda t: F.interpolate(conv(t), scale_factor=4, mode="nearest")  # noqa: E731
    with torch.no_grad():
        whole = tiled_apply(fn, x, 16, 4, scale=4)
        rows, parts = 0, []
        for row, band in tiled_bands(fn, x, 16, 4, scale=4):
            assert row == rows   # top to bottom, no gap, no repeat
            rows += band.shape[-2]
            parts.append(band.clone())   # a band is valid until the next one is asked for
    assert rows == 37 * 4
    torch.testing.assert_close(torch.cat(parts, -2), whole, atol=1e-6, rtol=0)


def _bands(hr: torch.Tensor, rows: int = 24):
    for start in range(0, hr.shape[-2], rows):
        yield start, hr[..., start:start + rows, :].clone()


@pytest.mark.parametrize("method", ["none", "adain", "wavelet"])
def test_assemble_equals_the_whole_image_colour_fix(method):
    """Band-wise colour fix (with the wavelet halo) = the whole-image fix, to float rounding; the
    8-bit output is that, quantised (within one step where the 16-bit store rounds)."""
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 80, 30)            # 320 output rows: several pass-2 bands of ROWS
    assert 80 * 4 > ROWS
    hr = (bicubic_up(lr, 4) + 0.05 * torch.randn(1, 3, 320, 120)).clamp(0, 1)
    ref = color_fix(hr.clone(), bicubic_up(lr, 4).clamp(0, 1), method)[0]
    out = assemble(_bands(hr), lr, 4, method, torch.float32)
    torch.testing.assert_close(out, ref, atol=2e-6, rtol=0)
    out8 = assemble(_bands(hr), lr, 4, method, torch.uint8)
    assert out8.dtype == torch.uint8
    assert (out8.int() - quantise(ref, torch.uint8).int()).abs().max() <= 1


@pytest.mark.parametrize("method", ["none", "wavelet"])
def test_assemble_reduce_box_averages_the_fixed_image(method):
    """``reduce=2`` = the x4 result (colour-fixed as a whole) averaged over 2 x 2 blocks."""
    torch.manual_seed(0)
    lr = torch.rand(1, 3, 80, 30)
    hr = (bicubic_up(lr, 4) + 0.05 * torch.randn(1, 3, 320, 120)).clamp(0, 1)
    full = assemble(_bands(hr), lr, 4, method, torch.float32)
    half = assemble(_bands(hr), lr, 4, method, torch.float32, reduce=2)
    assert half.shape == (3, 160, 60)
    torch.testing.assert_close(half, F.avg_pool2d(full[None], 2)[0], atol=2e-6, rtol=0)
    with pytest.raises(ValueError, match="reduce"):
        assemble(_bands(hr), lr, 4, method, torch.float32, reduce=3)


def test_assemble_grey_gives_the_channel_mean_and_alpha_is_banded():
    lr = torch.rand(1, 3, 20, 20)
    hr = bicubic_up(lr, 4).clamp(0, 1)
    out = assemble(_bands(hr), lr, 4, "none", torch.uint8, grey=True)
    assert out.shape == (1, 80, 80)
    assert (out.int() - quantise(hr[0].mean(0, keepdim=True), torch.uint8).int()).abs().max() <= 1
    alpha = torch.rand(1, 20, 20)
    assert torch.equal(upscale_alpha(alpha, 4, torch.uint8), quantise(bicubic_up(alpha, 4).clamp(0, 1), torch.uint8))


def test_adain_keeps_its_closed_form():
    x, ref = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.5 + 0.2
    out = adain(x, ref)
    torch.testing.assert_close(out.mean((-2, -1)), ref.mean((-2, -1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std((-2, -1)), ref.std((-2, -1)), atol=1e-4, rtol=0)


PEAK = r"""
import json, sys, numpy as np, torch
from pathlib import Path
torch.set_num_threads(1)
from restore import SuperResolutionPipeline

def hwm():
    return int([l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")][0].split()[1]) * 1024

pipe = SuperResolutionPipeline.from_pretrained(sys.argv[1], device="cpu", one_step=True)
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (768, 768, 3), dtype=np.uint8)
Path("/proc/self/clear_refs").write_text("5")
pipe(x[:128, :128])
base = hwm()
out = pipe(x)
print(json.dumps({"growth": hwm() - base, "pixels": out.shape[0] * out.shape[1]}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_peak_memory_is_bounded_per_output_pixel(tiny_weights):
    """A 768^2 photo (x4: 9.4 Mpx, 28 MB as uint8) grows peak RSS over the model's own one-tile work
    by the 16-bit store (6 bytes per output pixel), one band of tiles and the allocator's slack:
    ~9.5-12.5 bytes per pixel measured here; the whole-image float path this replaced took ~25.
    The bound asserted leaves room for the allocator (glibc keeps 20-60 MB of freed heap); the
    issue's 12-byte target is measured on the shipped model by ``python -m experiments.memory``."""
    done = subprocess.run([sys.executable, "-c", PEAK, str(tiny_weights)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(done.stdout.strip().splitlines()[-1])
    assert r["growth"] / r["pixels"] <= 15, f"{r['growth'] / r['pixels']:.1f} bytes per output pixel"

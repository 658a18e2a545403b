"""python -m restore.mri on small synthetic fastMRI files with a tiny random model (plumbing only)."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pytest
import torch
from diffusers import UNet2DModel

from restore.mri.cli import main
from restore.mri.fourier import fft2c
from restore.mri.masks import column_mask
from shared.checkpoints import save_denoiser
from shared.denoiser import ConditionalDenoiser
from shared.processes import ResShiftScheduler

S, H, W = 2, 20, 16


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    unet = UNet2DModel(in_channels=5, out_channels=2, block_out_channels=(16, 32), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8, add_attention=False)
    folder = tmp_path_factory.mktemp("mri_weights")
    save_denoiser(ConditionalDenoiser(unet, ResShiftScheduler(), unshuffle=1, skip=1.0, concat_y=True), folder,
                  extra={"task": "mri_reconstruction"})
    return folder


def volume(coils=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.complex(torch.rand(S, H, W, generator=g), torch.zeros(S, H, W))
    if coils is None:
        return fft2c(images).numpy(), None
    maps = torch.complex(torch.rand(coils, H, W, generator=g) + 0.5, torch.zeros(coils, H, W))
    maps = (maps / maps.abs().square().sum(0, keepdim=True).sqrt())[None].expand(S, -1, -1, -1)
    return fft2c(maps * images[:, None]).numpy(), maps.numpy()


def write(path, kspace, **extra):
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace)
        for k, v in extra.items():
            f.create_dataset(k, data=v)
    return path


def run(*args) -> int:
    return main([*map(str, args), "--quiet", "--device", "cpu"])


def test_single_coil_undersampled_file(tmp_path, weights):
    k, _ = volume()
    mask = column_mask(W, 4, seed=0).numpy()
    src = write(tmp_path / "a.h5", (k * mask).astype(np.complex64), mask=mask)
    assert run(src, "-o", tmp_path / "out.h5", "--weights", weights, "--steps", "2") == 0
    with h5py.File(tmp_path / "out.h5") as f:
        rec = f["reconstruction"][()]
        assert rec.shape == (S, H, W) and rec.dtype == np.float32 and np.isfinite(rec).all()
        assert "reconstruction_std" not in f


def test_simulated_acceleration_samples_and_multicoil(tmp_path, weights):
    k, maps = volume(coils=4)
    src = write(tmp_path / "full.h5", k.astype(np.complex64), coil_maps=maps.astype(np.complex64))
    out = tmp_path / "out" / "full.h5"
    assert run(src, "-o", out, "--weights", weights, "--simulate-acceleration", "4", "--samples", "2",
               "--steps", "1") == 0
    with h5py.File(out) as f:
        assert f["reconstruction"].shape == (S, H, W) and f["reconstruction_std"].shape == (S, H, W)
        assert f.attrs["acceleration_simulated"] == 4


def test_multicoil_without_maps_estimates_them(tmp_path, weights):
    pytest.importorskip("sigpy")
    k, _ = volume(coils=3)
    mask = column_mask(W, 4, seed=1).numpy()
    src = write(tmp_path / "multi.h5", (k * mask).astype(np.complex64))      # no coil_maps: ESPIRiT
    assert run(src, "-o", tmp_path / "out.h5", "--weights", weights, "--steps", "1") == 0
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["reconstruction"].shape == (S, H, W) and np.isfinite(f["reconstruction"][()]).all()


def test_errors_are_one_line(tmp_path, weights, capsys, monkeypatch):
    k, _ = volume(coils=3)
    write(tmp_path / "multi.h5", k.astype(np.complex64))      # no coil_maps
    (tmp_path / "text.h5").write_text("no")
    monkeypatch.setitem(sys.modules, "sigpy.mri.app", None)    # as without the [mri] extra
    assert run(tmp_path / "multi.h5", "-o", tmp_path / "o.h5", "--weights", weights) == 1
    err = capsys.readouterr().err
    assert "error: " in err and "multi.h5: slice 0: estimating coil maps (ESPIRiT) needs sigpy" in err
    monkeypatch.undo()
    assert run(tmp_path / "text.h5", "-o", tmp_path / "o.h5", "--weights", weights) == 1
    assert "not an HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()
    assert run(tmp_path / "multi.h5", "-o", tmp_path / "o.h5", "--weights", tmp_path) == 2
    assert "no model found" in capsys.readouterr().err
    assert run(tmp_path / "text.h5", "-o", tmp_path / "o.h5", "--weights", weights, "--samples", "0") == 2


def test_crop(tmp_path, weights, capsys):
    k, _ = volume()
    src = write(tmp_path / "a.h5", k.astype(np.complex64))
    assert run(src, "-o", tmp_path / "o.h5", "--weights", weights, "--steps", "1", "--crop", "12", "10") == 0
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["reconstruction"].shape == (S, 12, 10)
    assert run(src, "-o", tmp_path / "big.h5", "--weights", weights, "--crop", "40", "10") == 1
    assert "--crop 40 10 is larger than the 20 x 16 image" in capsys.readouterr().err
    assert not (tmp_path / "big.h5").exists()
    assert run(src, "-o", tmp_path / "big.h5", "--crop", "0", "10") == 2


def test_one_step_needs_a_student(tmp_path, weights, capsys):
    k, _ = volume()
    src = write(tmp_path / "a.h5", k.astype(np.complex64))
    assert run(src, "-o", tmp_path / "o.h5", "--weights", weights, "--one-step") == 2
    assert "no one-step student" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        run(src, "-o", tmp_path / "o.h5", "--one-step", "--steps", "2")
    assert exit_info.value.code == 2 and "not allowed with" in capsys.readouterr().err
    assert run(src, "-o", tmp_path / "o.h5", "--one-step", "--samples", "4") == 2
    assert "the one-step student is deterministic" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()

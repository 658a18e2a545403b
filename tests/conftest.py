"""Shared fixtures: tiny random-weight models (for plumbing tests only, never shipped)."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch
from diffusers import UNet2DModel

from shared.denoiser import ConditionalDenoiser
from shared.lora import AdapterSpec
from shared.processes import ResShiftScheduler
from shared.student import OneStepStudent

torch.set_num_threads(2)


def tiny_denoiser(seed: int = 0) -> ConditionalDenoiser:
    torch.manual_seed(seed)
    unet = UNet2DModel(in_channels=99, out_channels=48, block_out_channels=(16, 32), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8, add_attention=False)
    return ConditionalDenoiser(unet, ResShiftScheduler(), unshuffle=4, skip=1.0, concat_y=True).eval()


def randomize_adapters(student: OneStepStudent, scale: float = 0.05, seed: int = 0) -> None:
    """LoRA B starts at zero; give adapters non-zero weights so tests can see them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in student.denoiser.backbone.named_parameters():
            if ".lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)


def tiny_student(seed: int = 0) -> OneStepStudent:
    specs = [AdapterSpec("pixel", rank=4, alpha=4), AdapterSpec("detail", rank=4, alpha=4)]
    student = OneStepStudent.from_teacher(tiny_denoiser(seed), specs)
    randomize_adapters(student, seed=seed)
    return student.eval()


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """A weights folder with a tiny teacher and student, laid out like the shipped one."""
    from shared.checkpoints import save_denoiser

    root = tmp_path_factory.mktemp("weights")
    save_denoiser(tiny_denoiser(), root / "resshift_x4", extra={"scale": 4})
    tiny_student().save_pretrained(root / "onestep_x4", extra={"scale": 4})
    return root


def tiny_forecast_model(folder):
    """A random-weight forecasting model (ResShift, 4 steps, a 2-layer SeriesUNet) saved to ``folder``: only for
    plumbing tests, its forecasts mean nothing."""
    from shared.backbone1d import SeriesUNet
    from shared.checkpoints import save_denoiser

    torch.manual_seed(0)
    network = SeriesUNet(in_channels=4, out_channels=1, width=8, layers=2)   # x_t, y, [observed, future]
    process = ResShiftScheduler(num_train_timesteps=4, kappa=1.5, min_noise_level=0.2, etas_end=0.99, power=0.3)
    denoiser = ConditionalDenoiser(network, process, unshuffle=1, skip=1.0, concat_y=True)
    return save_denoiser(denoiser, folder, extra={"task": "forecasting", "window": 96})


@pytest.fixture(scope="session")
def tiny_forecast_weights(tmp_path_factory):
    """A tiny random-weight forecasting model folder (plumbing tests only, never shipped)."""
    return tiny_forecast_model(tmp_path_factory.mktemp("forecast") / "resshift")


def tiny_downscale_model(root):
    """A random-weight downscaler (x4 for a variable ``tas``, static ``orog``, NaN mask, 2 x 2
    unshuffle) saved to ``root/regression`` and ``root/diffusion``: only for plumbing tests."""

    from shared.checkpoints import save_denoiser
    from shared.processes import DirectPrediction

    def unet(in_channels: int) -> UNet2DModel:
        return UNet2DModel(in_channels=in_channels, out_channels=4, block_out_channels=[8, 8], layers_per_block=1,
                           down_block_types=["DownBlock2D"] * 2, up_block_types=["UpBlock2D"] * 2, norm_num_groups=4)

    settings = {"var": "tas", "factor": 4, "static": ["orog"], "mask_channel": True,
                "norm": {"mean": 280.0, "std": 10.0, "static": [[500.0, 300.0]]}}
    torch.manual_seed(0)
    # unshuffled by 2: y (4) + orog (4) + mask (4) = 12 channels; the diffusion adds the state and the mean
    save_denoiser(ConditionalDenoiser(unet(12), DirectPrediction(), unshuffle=2), root / "regression", extra=settings)
    process = ResShiftScheduler(num_train_timesteps=4, kappa=0.2, min_noise_level=0.2, etas_end=0.99, power=0.3)
    save_denoiser(ConditionalDenoiser(unet(20), process, unshuffle=2, concat_y=True), root / "diffusion", extra={})
    return root


@pytest.fixture(scope="session")
def tiny_downscale_weights(tmp_path_factory):
    """A tiny random-weight downscaler folder (plumbing tests only, never shipped)."""
    return tiny_downscale_model(tmp_path_factory.mktemp("downscaler"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (2 threads on a busy 2-core machine are ~40x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder this process cannot write in: mode 0o555, or for root (whom modes do not stop) the
    immutable flag; skips where neither works."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if os.access(folder, os.W_OK) and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0

    def restore():
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)

    if os.access(folder, os.W_OK):
        restore()
        pytest.skip("cannot make a read-only folder here")
    yield folder
    restore()


def tiny_audio_denoiser(process, in_channels: int, skip: float, concat_y: bool, seed: int = 0) -> ConditionalDenoiser:
    torch.manual_seed(seed)
    unet = UNet2DModel(in_channels=in_channels, out_channels=8, block_out_channels=(16, 32), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8, add_attention=False)
    with torch.no_grad():  # small outputs keep the random models' samplers tame
        unet.conv_out.weight.mul_(0.01)
        unet.conv_out.bias.zero_()
    return ConditionalDenoiser(unet, process, unshuffle=2, skip=skip, concat_y=concat_y).eval()


@pytest.fixture(scope="session")
def tiny_audio_weights(tmp_path_factory):
    """An audio weights folder with tiny random models for every method, laid out like the shipped one."""
    from shared.checkpoints import save_denoiser
    from shared.processes import DirectPrediction
    from shared.sde import OUVEScheduler

    root = tmp_path_factory.mktemp("audio_weights")
    ou = dict(component_scale=0.7071067811865476)
    save_denoiser(tiny_audio_denoiser(DirectPrediction(), 9, 1.0, False), root / "predictive")
    res = dict(ou, parametrization="residual")   # both parametrisations go through the pipeline
    save_denoiser(tiny_audio_denoiser(OUVEScheduler(**res), 17, 0.0, True), root / "score")
    save_denoiser(tiny_audio_denoiser(OUVEScheduler(**res), 25, 0.0, True), root / "storm")
    save_denoiser(tiny_audio_denoiser(OUVEScheduler(**ou), 17, 0.0, True, seed=1), root / "consistency",
                  extra={"consistency": {"sigma_data": 0.06, "num_intervals": 30}})
    return root


@pytest.fixture(scope="session")
def speech_clip():
    """Three seconds of real synthetic speech (espeak-ng) at 16 kHz, peak 0.5."""
    from audio.corpus import Voice, synthesize

    audio = synthesize(Voice("espeak-ng", "en-us"), "The birch canoe slid on the smooth planks. "
                       "Glue the sheet to the dark blue background.", 160, 50)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)

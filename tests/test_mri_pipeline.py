"""MRIReconstructionPipeline with a tiny random model: data consistency, scale, samples, errors.
(Correctness of the plumbing only; quality needs the trained model.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import UNet2DModel

from restore.mri.fourier import fft2c
from restore.mri.masks import column_mask
from restore.mri.pipeline import MRIReconstructionPipeline
from shared.complex import complex_to_channels
from shared.denoiser import ConditionalDenoiser
from shared.files import InputError
from shared.processes import ResShiftScheduler

H, W = 20, 18      # not multiples of the grid: the pipeline pads inside the denoiser


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    unet = UNet2DModel(in_channels=5, out_channels=2, block_out_channels=(16, 32), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8, add_attention=False)
    model = ConditionalDenoiser(unet, ResShiftScheduler(), unshuffle=1, skip=1.0, concat_y=True).eval()
    return MRIReconstructionPipeline(model, "cpu")


def slice_kspace(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    image = torch.complex(torch.rand(H, W, generator=g), 0.1 * torch.randn(H, W, generator=g))
    mask = column_mask(W, 4, "random", seed=seed)
    return (fft2c(image) * mask * scale), mask


@pytest.mark.parametrize("dc", ["hard", "end"])
def test_hard_dc_output_keeps_the_measured_kspace(pipe, dc):
    k, mask = slice_kspace()
    images, mean, std = pipe.reconstruct(k, mask, dc=dc, num_inference_steps=2)
    m = pipe.measurement(k, mask)
    assert m.residual(complex_to_channels(images[:, None])).max() < 1e-5
    assert mean.shape == (H, W) and torch.equal(std, torch.zeros(H, W))
    assert pipe.last_run.network_evaluations == 2


def test_without_dc_the_data_are_not_kept(pipe):
    k, mask = slice_kspace()
    images, _, _ = pipe.reconstruct(k, mask, dc="none")
    assert pipe.measurement(k, mask).residual(complex_to_channels(images[:, None])).max() > 1e-2


def test_soft_dc_sits_between(pipe):
    k, mask = slice_kspace(1)
    m = pipe.measurement(k, mask)
    res = {dc: float(m.residual(complex_to_channels(pipe.reconstruct(k, mask, dc=dc, trust=1.0)[0][:, None])).max())
           for dc in ("hard", "soft", "none")}
    assert res["hard"] < res["soft"] < res["none"]


def test_scanner_scale_and_user_kinds(pipe):
    k, mask = slice_kspace(2)
    ref = pipe(k, mask)
    small = pipe(k * 1e-5, mask)
    assert isinstance(ref, torch.Tensor) and ref.shape == (H, W)
    torch.testing.assert_close(small, ref * 1e-5, rtol=1e-4, atol=1e-6 * float(ref.max()) * 1e-5)
    out = pipe(k.numpy(), None)     # mask from the non-zero columns
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-5, atol=1e-7)


def test_samples_give_a_spread(pipe):
    k, mask = slice_kspace(3)
    mean, std = pipe(k, mask, samples=3, generator=torch.Generator().manual_seed(0))
    images, mean2, _ = pipe.reconstruct(k, mask, samples=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mean, images.abs().mean(0))
    assert std.shape == (H, W) and (std >= 0).all() and std.max() > 0


def test_multicoil_with_maps(pipe):
    g = torch.Generator().manual_seed(4)
    maps = torch.complex(torch.rand(4, H, W, generator=g) + 0.5, torch.zeros(4, H, W))
    maps = maps / maps.abs().square().sum(0, keepdim=True).sqrt()
    image = torch.complex(torch.rand(H, W, generator=g), torch.zeros(H, W))
    mask = column_mask(W, 4, seed=4)
    k = fft2c(maps * image) * mask
    mean = pipe(k, mask, coil_maps=maps)
    assert mean.shape == (H, W) and torch.isfinite(mean).all()
    with pytest.raises(InputError, match="single-coil kspace"):
        pipe(k[0], mask, coil_maps=maps[0])


def test_multicoil_without_maps_uses_espirit(pipe, monkeypatch):
    import restore.mri.pipeline as module

    g = torch.Generator().manual_seed(5)
    maps = torch.complex(torch.rand(3, H, W, generator=g) + 0.5, torch.zeros(3, H, W))
    maps = maps / maps.abs().square().sum(0, keepdim=True).sqrt()
    mask = column_mask(W, 4, seed=5)
    k = fft2c(maps * torch.rand(H, W, generator=g)) * mask
    calls = []
    monkeypatch.setattr(module, "espirit_maps", lambda kspace, m: calls.append(kspace.shape) or maps.numpy())
    torch.testing.assert_close(pipe(k, mask), pipe(k, mask, coil_maps=maps))
    assert calls == [(3, H, W)]

    def missing(kspace, m):
        raise ImportError("estimating coil maps (ESPIRiT) needs sigpy: pip install 'fastdiff-suite[mri]'")

    monkeypatch.setattr(module, "espirit_maps", missing)
    with pytest.raises(InputError, match="needs sigpy"):
        pipe(k, mask)


def test_input_errors(pipe):
    k, mask = slice_kspace()
    bad = k.clone()
    bad[0, 0] = float("nan")
    cases = {"must be complex": (k.real, mask), "one slice": (k[None, None], mask), "NaN": (bad, mask),
             "mask has 5 entries": (k, mask[:5]), "no measured": (k, torch.zeros(W))}
    for message, (kk, mm) in cases.items():
        with pytest.raises(InputError, match=message):
            pipe(kk, mm)
    with pytest.raises(InputError, match="unknown dc"):
        pipe(k, mask, dc="sometimes")


@pytest.fixture(scope="module")
def with_student(pipe):
    from shared import lora
    from shared.student import OneStepStudent

    student = OneStepStudent.from_teacher(pipe.model, [lora.AdapterSpec("pixel", rank=4, alpha=4)])
    for p in student.parameters():        # adapters away from their zero init: the student differs
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    return MRIReconstructionPipeline(pipe.model, "cpu", student=student.eval())


def test_one_step_student_keeps_the_data_in_one_evaluation(with_student):
    k, mask = slice_kspace(6)
    images, mean, std = with_student.reconstruct(k, mask, one_step=True, samples=2)
    assert with_student.last_run.network_evaluations == 1
    assert with_student.measurement(k, mask).residual(complex_to_channels(images[:, None])).max() < 1e-5
    assert torch.equal(std, torch.zeros(H, W))
    assert not torch.allclose(mean, with_student(k, mask))          # the teacher path is another model


def test_one_step_save_load_and_modes(pipe, with_student, tmp_path):
    from shared.checkpoints import save_denoiser

    save_denoiser(pipe.model, tmp_path / "resshift")
    with_student.student.save_pretrained(tmp_path / "onestep")
    both = MRIReconstructionPipeline.from_pretrained(tmp_path, device="cpu")
    k, mask = slice_kspace(7)
    torch.testing.assert_close(both(k, mask, one_step=True), with_student(k, mask, one_step=True),
                               rtol=1e-3, atol=1e-3 * float(k.abs().max()))   # float16 weights on disk
    with pytest.raises(InputError, match="no one-step student"):
        pipe(k, mask, one_step=True)
    only = MRIReconstructionPipeline.from_pretrained(tmp_path / "onestep", device="cpu")
    with pytest.raises(InputError, match="only the one-step student"):
        only(k, mask)


def test_the_documented_import_is_the_pipeline():
    import restore.mri
    from restore.mri import MRIReconstructionPipeline as documented
    from restore.mri.pipeline import MRIReconstructionPipeline

    assert documented is MRIReconstructionPipeline and restore.mri.__all__ == ["MRIReconstructionPipeline"]

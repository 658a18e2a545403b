"""Training: LightningCLI fit, export, resume, a 2-process CPU DDP run, and the student stages."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from experiments.__main__ import main as cli_main
from restore.sr.data import PhotoPatches, round_trip_psnr, split_names, validation_pairs
from shared.checkpoints import load_denoiser

CONFIG = Path(__file__).parent / "configs" / "tiny_sr.yaml"
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("config", sorted((ROOT / "experiments").glob("*/*.yaml")), ids=lambda p: p.stem)
def test_experiment_configs_parse(config, capsys):
    """Every shipped experiment config names existing classes and arguments (LightningCLI checks them)."""
    with pytest.raises(SystemExit) as done:
        cli_main(["fit", "--config", str(config), "--print_config"])
    assert done.value.code == 0, capsys.readouterr().err[-2000:]


def test_split_by_image_is_disjoint():
    train, val = set(split_names("train")), set(split_names("val"))
    assert train and val and not train & val
    assert {"coffee", "grace_hopper"} <= val


def test_wallpaper_photos_are_found_capped_and_optional(tmp_path, monkeypatch):
    """Plasma wallpapers are read from their folder's full-size file (the other sizes are links to it),
    Lomiri ones by file name; only the listed photographs, downscaled to WALLPAPER_MAX_SIDE."""
    from PIL import Image

    from restore.sr import data

    images = tmp_path / "wallpapers" / "Path" / "contents" / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (2000, 1000), (10, 200, 30)).save(images / "2560x1600.jpg")
    (images / "800x600.jpg").symlink_to(images / "2560x1600.jpg")
    (tmp_path / "backgrounds").mkdir()
    Image.new("RGB", (900, 1200), (200, 10, 30)).save(tmp_path / "backgrounds" / "Dragonfly_by_Bolly.jpg")
    Image.new("RGB", (900, 1200)).save(tmp_path / "backgrounds" / "Fossa_by_Jasper_Roks.jpg")  # drawn: not listed
    monkeypatch.setattr(data, "WALLPAPER_DATA", tmp_path)

    train = data.split_names("train")
    assert {"Path", "Dragonfly_by_Bolly"} <= set(train) and "Fossa_by_Jasper_Roks" not in train
    assert not set(train) & set(data.split_names("val"))
    assert not {"Path", "Dragonfly_by_Bolly"} & set(data.split_names("train", wallpapers=False))
    loaders = data.photo_loaders()
    assert loaders["Path"]().shape == (data.WALLPAPER_MAX_SIDE // 2, data.WALLPAPER_MAX_SIDE, 3)
    assert loaders["Dragonfly_by_Bolly"]().shape == (1200, 900, 3)   # under the cap: unchanged


def test_patches_are_paired_and_in_range():
    ds = PhotoPatches(split_names("train")[:3], patch_size=32, length=4)
    item = ds[0]
    assert item["x0"].shape == (3, 32, 32) and item["y"].shape == (3, 32, 32) and item["cond"].shape == (3, 8, 8)
    for v in item.values():
        assert v.min() >= -1 and v.max() <= 1
    a = validation_pairs("realistic", crop=64)
    b = validation_pairs("realistic", crop=64)
    torch.testing.assert_close(a[0]["cond"], b[0]["cond"])  # validation degradations are seeded


def test_round_trip_psnr_separates_flat_from_detailed_patches():
    flat = torch.full((3, 32, 32), 0.4)
    g = torch.Generator().manual_seed(0)
    detailed = torch.rand(3, 32, 32, generator=g)
    assert round_trip_psnr(flat, 4) > 100 and round_trip_psnr(detailed, 4) < 15
    # closed form: MSE on [-1, 1] of a known round-trip error
    from restore.sr.degradations import bicubic_down, bicubic_up
    err = bicubic_up(bicubic_down(detailed, 4), 4).clamp(0, 1) - detailed
    assert round_trip_psnr(detailed, 4) == pytest.approx(10 * math.log10(4 / float((2 * err).pow(2).mean())), rel=1e-5)


def test_flat_patches_are_drawn_again(monkeypatch):
    """``max_flat_psnr``: a flat draw is replaced by the next detailed one; after MAX_DRAWS flat ones it is kept."""
    ds = PhotoPatches(split_names("train")[:1], patch_size=32, length=4, max_flat_psnr=30.0)
    flat, detailed = torch.full((3, 32, 32), 0.5), torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    draws = iter([flat, flat, detailed, flat])
    monkeypatch.setattr(ds, "draw_patch", lambda rng: next(draws))
    assert torch.equal(ds[0]["x0"], detailed * 2 - 1)
    monkeypatch.setattr(ds, "draw_patch", lambda rng: flat)
    assert torch.equal(ds[0]["x0"], flat * 2 - 1)
    ds.max_flat_psnr = None                                   # off: the first draw is kept
    draws = iter([flat, detailed])
    monkeypatch.setattr(ds, "draw_patch", lambda rng: next(draws))
    assert torch.equal(ds[0]["x0"], flat * 2 - 1)


def test_fit_export_and_resume(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(CONFIG)])
    denoiser, meta = load_denoiser(tmp_path / "pretrained")
    assert meta["extra"]["training"]["global_step"] == 2
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()
    cli_main(["fit", "--config", str(CONFIG), "--trainer.max_steps=3", "--ckpt_path", "ckpt/last.ckpt"])
    _, meta = load_denoiser(tmp_path / "pretrained")
    assert meta["extra"]["training"]["global_step"] == 3


@pytest.mark.slow
def test_two_process_cpu_ddp_fit(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments", "fit", "--config", str(CONFIG), "--trainer.strategy=ddp",
         "--trainer.devices=2", "--trainer.accelerator=cpu"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "world_size: 2" in proc.stderr + proc.stdout or "distributed_backend=gloo" in proc.stderr + proc.stdout
    _, meta = load_denoiser(tmp_path / "pretrained")
    assert meta["extra"]["training"]["global_step"] == 2


def test_student_pixel_then_detail_stage(tmp_path, tiny_weights, monkeypatch):
    """Both LoRA stages train a step and export a loadable student."""
    from lightning.pytorch import Trainer
    from torch.utils.data import DataLoader

    from restore.sr.data import _ListDataset
    from shared.student import OneStepStudent
    from shared.training import OneStepStudentModule

    data = DataLoader(_ListDataset(validation_pairs("bicubic", crop=32)), batch_size=2)
    kw = dict(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu", limit_val_batches=1)
    pixel = OneStepStudentModule(str(tiny_weights / "resshift_x4"), stage="pixel", rank=4, alpha=4,
                                 teacher_steps=2, export_dir=str(tmp_path / "pixel"))
    Trainer(**kw).fit(pixel, data, data)
    detail = OneStepStudentModule(str(tiny_weights / "resshift_x4"), stage="detail", rank=4, alpha=4,
                                  init_student=str(tmp_path / "pixel"), export_dir=str(tmp_path / "detail"))
    before = {k: v.clone() for k, v in detail.student.denoiser.backbone.state_dict().items() if ".pixel." in k}
    Trainer(**kw).fit(detail, data, data)
    after = detail.student.denoiser.backbone.state_dict()
    for k, v in before.items():  # the pixel adapter stays frozen in the detail stage
        torch.testing.assert_close(after[k], v)
    student, meta = OneStepStudent.from_pretrained(tmp_path / "detail")
    assert student.adapter_names == ["pixel", "detail"] and meta["extra"]["training"]["stage"] == "detail"


def test_warmup_cosine_closed_form():
    from shared.training.base import warmup_cosine

    assert warmup_cosine(0, warmup=4) == 0.25 and warmup_cosine(9, warmup=4) == 1.0       # constant after warm-up
    assert warmup_cosine(0, warmup=1, decay=10) == 1.0 and warmup_cosine(10, warmup=1, decay=10) == 0.0
    assert math.isclose(warmup_cosine(5, warmup=1, decay=10), 0.5)
    assert math.isclose(warmup_cosine(1, warmup=4, decay=4), 0.5 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert warmup_cosine(30, warmup=1, decay=10) == 0.0                                       # stays at zero


def test_student_learning_rate_decays_to_zero_at_max_steps(tiny_weights):
    from lightning.pytorch import Trainer
    from torch.utils.data import DataLoader

    from restore.sr.data import _ListDataset
    from shared.training import OneStepStudentModule

    data = DataLoader(_ListDataset(validation_pairs("bicubic", crop=32)), batch_size=2)
    module = OneStepStudentModule(str(tiny_weights / "resshift_x4"), stage="pixel", rank=4, alpha=4, w_distill=0.0,
                                  warmup_steps=1, cosine_decay=True, lr=1e-3)
    trainer = Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu", limit_val_batches=0)
    trainer.fit(module, data)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="max_steps"):
        Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, accelerator="cpu", limit_val_batches=0).fit(module, data)


def _fit(module, batches: list[dict], tmp_path) -> None:
    import lightning.pytorch as pl

    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))


def _audio_batches(n: int = 2) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    return [{"x0": 0.1 * torch.randn(2, 2, 16, 16, generator=g), "y": 0.1 * torch.randn(2, 2, 16, 16, generator=g),
             "cond": torch.zeros(2, 1, 8, 8)} for _ in range(n)]


def test_storm_module_trains_on_a_predictive_model(tiny_audio_weights, tmp_path):
    from shared.training import ConditionalDiffusionModule

    backbone = {"class": "UNet2DModel", "in_channels": 25, "out_channels": 8, "block_out_channels": [16, 32],
                "layers_per_block": 1, "down_block_types": ["DownBlock2D"] * 2, "up_block_types": ["UpBlock2D"] * 2,
                "norm_num_groups": 8, "add_attention": False}
    module = ConditionalDiffusionModule(backbone, {"class": "OUVEScheduler", "component_scale": 0.7071},
                                        unshuffle=2, skip=0.0, concat_y=True, export_dir=str(tmp_path / "storm"),
                                        predictor=str(tiny_audio_weights / "predictive"))
    before = {k: v.clone() for k, v in module.predictor.state_dict().items()}
    _fit(module, _audio_batches(), tmp_path)
    denoiser, meta = load_denoiser(tmp_path / "storm")
    assert type(denoiser.process).__name__ == "OUVEScheduler" and meta["extra"]["training"]["global_step"] == 2
    assert all(torch.equal(before[k], v) for k, v in module.predictor.state_dict().items())  # predictor frozen


@pytest.mark.parametrize("teacher,regression", [("audio", 0.0), ("audio", 0.5), ("sr", 0.0)])
def test_consistency_distillation_is_generic(teacher, regression, tiny_audio_weights, tiny_weights, tmp_path):
    """The same module distils the OU speech teacher and the discrete ResShift SR teacher."""
    from shared.training import ConsistencyDistillationModule

    path = tiny_audio_weights / "score" if teacher == "audio" else tiny_weights / "resshift_x4"
    module = ConsistencyDistillationModule(str(path), num_intervals=6, regression_weight=regression,
                                           export_dir=str(tmp_path / "cm"))
    if teacher == "audio":
        batches = [{k: v for k, v in b.items() if k != "cond"} | {"cond": torch.zeros(2, 1, 8, 8)}
                   for b in _audio_batches()]
    else:
        g = torch.Generator().manual_seed(0)
        batches = [{"x0": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "y": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1,
                    "cond": torch.rand(1, 3, 8, 8, generator=g)} for _ in range(2)]
    start = {k: v.clone() for k, v in module.student.backbone.state_dict().items()}
    _fit(module, batches, tmp_path)
    changed = any(not torch.equal(start[k], v) for k, v in module.student.backbone.state_dict().items())
    assert changed
    _, meta = load_denoiser(tmp_path / "cm")
    assert meta["extra"]["consistency"]["num_intervals"] == (6 if teacher == "audio" else 4)
    assert meta["extra"]["consistency"]["noise_level"] == "effective"


def test_consistency_distillation_continues_from_a_trained_student(tiny_audio_weights):
    """``student``: fine-tuning starts from that model's weights; the teacher stays the teacher."""
    from shared.training import ConsistencyDistillationModule

    module = ConsistencyDistillationModule(str(tiny_audio_weights / "score"),
                                           student=str(tiny_audio_weights / "consistency"))
    trained, _ = load_denoiser(tiny_audio_weights / "consistency")
    teacher, _ = load_denoiser(tiny_audio_weights / "score")
    for k, v in trained.backbone.state_dict().items():
        assert torch.equal(module.student.backbone.state_dict()[k], v)
        assert torch.equal(module.teacher.backbone.state_dict()[k], teacher.backbone.state_dict()[k])
    assert any(not torch.equal(v, teacher.backbone.state_dict()[k]) for k, v in trained.backbone.state_dict().items())


def test_diffusion_module_starts_from_init_weights(tiny_audio_weights):
    from shared.training import ConditionalDiffusionModule

    backbone = {"class": "UNet2DModel", **load_denoiser(tiny_audio_weights / "predictive")[0].backbone.config}
    backbone = {k: v for k, v in backbone.items() if not k.startswith("_")}
    fresh = ConditionalDiffusionModule(backbone, {"class": "DirectPrediction"}, unshuffle=2)
    tuned = ConditionalDiffusionModule(backbone, {"class": "DirectPrediction"}, unshuffle=2,
                                       init_weights=str(tiny_audio_weights / "predictive"))
    trained = load_denoiser(tiny_audio_weights / "predictive")[0].backbone.state_dict()
    assert all(torch.equal(tuned.denoiser.backbone.state_dict()[k], v) for k, v in trained.items())
    assert any(not torch.equal(fresh.denoiser.backbone.state_dict()[k], v) for k, v in trained.items())


def _final_lr(module, batches: list[dict], tmp_path) -> float:
    """The learning rate after training ``module`` for one step per batch (``max_steps = len(batches)``)."""
    import lightning.pytorch as pl

    trainer = pl.Trainer(accelerator="cpu", max_steps=len(batches), logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return trainer.optimizers[0].param_groups[0]["lr"]


@pytest.mark.parametrize("cosine_decay,final", [(False, 1e-3), (True, 0.0)])
def test_diffusion_module_anneals_to_zero_with_cosine_decay(cosine_decay, final, tmp_path):
    """``cosine_decay``: an annealing stage ends at rate 0 on ``max_steps``; without it the rate stays constant."""
    from shared.training import ConditionalDiffusionModule

    backbone = {"class": "UNet2DModel", "in_channels": 4, "out_channels": 2, "block_out_channels": [8, 16],
                "layers_per_block": 1, "down_block_types": ["DownBlock2D"] * 2, "up_block_types": ["UpBlock2D"] * 2,
                "norm_num_groups": 4, "add_attention": False}
    module = ConditionalDiffusionModule(backbone, {"class": "DirectPrediction"}, skip=0.0, concat_y=True, lr=1e-3,
                                        warmup_steps=1, cosine_decay=cosine_decay)
    batches = [{k: v[:, :, :8, :8] for k, v in b.items() if k != "cond"} for b in _audio_batches(3)]
    assert _final_lr(module, batches, tmp_path) == pytest.approx(final, abs=1e-12)


@pytest.mark.parametrize("cosine_decay,final", [(False, 1e-3), (True, 0.0)])
def test_consistency_distillation_anneals_to_zero_with_cosine_decay(cosine_decay, final, tiny_audio_weights,
                                                                    tmp_path):
    """The consistency student, exported without an EMA, can end a stage on an annealed rate."""
    from shared.training import ConsistencyDistillationModule

    module = ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, regression_weight=1.0,
                                           lr=1e-3, warmup_steps=1, cosine_decay=cosine_decay)
    assert _final_lr(module, _audio_batches(3), tmp_path) == pytest.approx(final, abs=1e-12)


def test_consistency_distillation_rejects_unknown_noise_level(tiny_audio_weights):
    from shared.training import ConsistencyDistillationModule

    with pytest.raises(ValueError, match="noise_level"):
        ConsistencyDistillationModule(str(tiny_audio_weights / "score"), noise_level="sigma")


def test_consistency_regression_term_is_the_one_step_mse(tiny_audio_weights):
    """loss(w) - loss(0) = w |f(y + sigma(1) z, t_N) - x0|^2 for the same random draws."""
    from shared.consistency import distillation_loss
    from shared.training import ConsistencyDistillationModule

    batch = _audio_batches(1)[0]
    losses = {}
    for w in (0.0, 2.0):
        module = ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, regression_weight=w)
        module.log = lambda *a, **k: None
        torch.manual_seed(0)
        losses[w] = module.training_step(batch, 0).item()   # draws: CD noise, then the prior sample
    y, x0 = batch["y"], batch["x0"]
    torch.manual_seed(0)
    f = module._f(module.student.backbone, y, batch["cond"])
    with torch.no_grad():
        distillation_loss(f, f, lambda x, t: x, module.student.process, x0, y, module.grid)  # replay the CD draws
        one_step = f(module.student.process.prior_sample(y), module.grid[-1].expand(y.shape[0]))
    assert losses[2.0] - losses[0.0] == pytest.approx(2.0 * torch.mean((one_step - x0) ** 2).item(), rel=1e-4)


def test_consistency_regression_along_the_path(tiny_audio_weights):
    """``regression_times="all"``: the data term is the mean of the one-step MSE and the MSE of
    ``f(x_t, t_n)``, ``x_t ~ q(x_t | x0, y)`` at a random inner grid time, for the same random draws."""
    from shared.consistency import distillation_loss
    from shared.training import ConsistencyDistillationModule

    batch = _audio_batches(1)[0]
    module = ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, regression_weight=1.0,
                                           regression_times="all")
    module.log = lambda *a, **k: None
    torch.manual_seed(0)
    loss = module.training_step(batch, 0).item()
    y, x0 = batch["y"], batch["x0"]
    process, grid = module.student.process, module.grid
    torch.manual_seed(0)
    f = module._f(module.student.backbone, y, batch["cond"])
    with torch.no_grad():
        cd = distillation_loss(f, module._f(module.target.module, y, batch["cond"]),
                               lambda x, t: module.teacher(x, t, y, batch["cond"]), process, x0, y, grid).item()
        top = torch.mean((f(process.prior_sample(y), grid[-1].expand(y.shape[0])) - x0) ** 2).item()
        n = torch.randint(1, len(grid) - 1, (y.shape[0],))
        assert 1 <= int(n.min()) and int(n.max()) < len(grid) - 1         # inner grid times only
        t = grid[n]
        along = torch.mean((f(process.add_noise(x0, torch.randn_like(x0), t, y=y), t) - x0) ** 2).item()
    assert along != pytest.approx(top)
    assert loss == pytest.approx(cd + 0.5 * (top + along), rel=1e-4)
    with pytest.raises(ValueError, match="regression_times"):
        ConsistencyDistillationModule(str(tiny_audio_weights / "score"), regression_times="some")


def test_consistency_regression_at_the_sampler_times(tiny_audio_weights, tmp_path):
    """``regression_times="sampler"``: the path term re-noises the student's own one-step estimate to a
    later time of the 2- or 4-step sampler (N = 6: t_3 for 2 steps; t_4 (4.5 rounds to even), t_3, t_2 for
    4 steps) and regresses that evaluation on ``x0``, for the same random draws."""
    from shared.consistency import distillation_loss
    from shared.training import ConsistencyDistillationModule

    batch = _audio_batches(1)[0]
    module = ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, regression_weight=1.0,
                                           regression_times="sampler")
    assert torch.equal(module.sampler_grid, module.grid[[2, 3, 4]])
    module.log = lambda *a, **k: None
    torch.manual_seed(0)
    loss = module.training_step(batch, 0).item()
    y, x0 = batch["y"], batch["x0"]
    process = module.student.process
    torch.manual_seed(0)
    f = module._f(module.student.backbone, y, batch["cond"])
    with torch.no_grad():
        cd = distillation_loss(f, module._f(module.target.module, y, batch["cond"]),
                               lambda x, t: module.teacher(x, t, y, batch["cond"]), process, x0, y, module.grid).item()
        one_step = f(process.prior_sample(y), module.grid[-1].expand(y.shape[0]))
        top = torch.mean((one_step - x0) ** 2).item()
        t = module.sampler_grid[torch.randint(0, 3, (y.shape[0],))]
        x_t = process.add_noise(one_step, torch.randn_like(one_step), t, y=y)
        along = torch.mean((f(x_t, t) - x0) ** 2).item()
    assert loss == pytest.approx(cd + 0.5 * (top + along), rel=1e-4)
    stopped = ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, regression_weight=1.0,
                                            regression_times="sampler", sampler_stop=2)
    assert torch.equal(stopped.sampler_grid, stopped.grid[[3, 4, 5]])   # 2 steps: t_6, t_4; 4: t_6, t_5, t_4, t_3
    stopped.export(str(tmp_path / "stopped"))
    meta = json.loads((tmp_path / "stopped" / "model.json").read_text())
    assert meta["extra"]["consistency"]["sampler_stop"] == 2
    # inference_stop changes only the exported sampler times, never the training grid
    later = ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, regression_weight=1.0,
                                          regression_times="sampler", sampler_stop=2, inference_stop=4)
    assert torch.equal(later.sampler_grid, stopped.sampler_grid)
    later.export(str(tmp_path / "later"))
    assert json.loads((tmp_path / "later" / "model.json").read_text())["extra"]["consistency"]["sampler_stop"] == 4
    with pytest.raises(ValueError, match="stop"):
        ConsistencyDistillationModule(str(tiny_audio_weights / "score"), num_intervals=6, inference_stop=6)


def test_import_callable_resolves_config_paths():
    from restore.sr.losses import frequency_loss
    from shared.training.base import import_callable

    assert import_callable("restore.sr.losses.frequency_loss") is frequency_loss
    assert import_callable(frequency_loss) is frequency_loss
    with pytest.raises(ValueError, match="restore.sr.losses.nope"):
        import_callable("restore.sr.losses.nope")


def test_zero_output_starts_residual_models_at_the_identity():
    from shared.training.base import build_denoiser

    backbone = {"class": "UNet2DModel", "in_channels": 4, "out_channels": 2, "block_out_channels": [8, 16],
                "layers_per_block": 1, "down_block_types": ["DownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "UpBlock2D"], "norm_num_groups": 4}
    process = {"class": "ResShiftScheduler", "num_train_timesteps": 4}
    y = torch.randn(2, 2, 16, 16)
    x_t = y + 0.1 * torch.randn(2, 2, 16, 16)
    t = torch.tensor([3, 3])
    zeroed = build_denoiser(backbone, process, skip=1.0, concat_y=True, zero_output=True)
    assert torch.count_nonzero(zeroed.backbone.conv_out.weight) == 0
    plain = build_denoiser(backbone, process, skip=1.0, concat_y=True)
    with torch.no_grad():
        start = zeroed(x_t, t, y)
        torch.testing.assert_close(start, zeroed.process.network_output(y, x_t, y, t))   # the backbone adds 0
        assert not torch.allclose(plain(x_t, t, y), start)


def test_x0_variance_is_estimated_in_training_and_exported(tmp_path):
    """``x0_variance_every``: the EMA model's x0 error per timestep is measured on training batches and the
    export carries it as the process's ``x0_variance`` (one non-negative value per timestep)."""
    from shared.training import ConditionalDiffusionModule

    backbone = {"class": "UNet2DModel", "in_channels": 4, "out_channels": 2, "block_out_channels": [8, 16],
                "layers_per_block": 1, "down_block_types": ["DownBlock2D"] * 2, "up_block_types": ["UpBlock2D"] * 2,
                "norm_num_groups": 4, "add_attention": False}
    process = {"class": "ResShiftScheduler", "num_train_timesteps": 4, "kappa": 0.2, "sigma_data": 0.1}
    module = ConditionalDiffusionModule(backbone, process, skip=0.0, concat_y=True, x0_variance_every=1,
                                        export_dir=str(tmp_path / "rs"))
    batches = [{k: v[:, :2] for k, v in b.items() if k != "cond"} for b in _audio_batches()]
    _fit(module, batches, tmp_path)
    gamma = load_denoiser(tmp_path / "rs")[0].process.config.x0_variance
    assert len(gamma) == 4 and all(g >= 0 for g in gamma) and gamma[0] < gamma[3]
    with pytest.raises(ValueError, match="no x0_error"):
        ConditionalDiffusionModule(backbone, {"class": "EDMScheduler"}, skip=0.0, x0_variance_every=1)

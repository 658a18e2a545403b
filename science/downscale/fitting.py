"""Training a downscaler on a user's own fine-grid dataset (``Downscaler.fit``, ``python -m science.downscale fit``).

The two stages of :mod:`.downscaler`, trained one after the other with the suite's Lightning module
(:class:`shared.training.ConditionalDiffusionModule`) on patches of the dataset (:class:`.data.DownscaleData`:
the coarse input is the ``F x F`` block mean, perfect-model set-up; the last 20 % of the times, or of the
longitudes when there is one time, are held out for validation):

1. the regression mean (``DirectPrediction``), for half of ``max_minutes``;
2. ResShift (T = 4) from that mean, for the other half, with EDM's preconditioning of the residual
   (:mod:`shared.preconditioning`) at the scale ``sigma_data`` the first stage leaves: the RMS of its
   residual on training patches (:func:`residual_scale`), and Analytic-DPM's reverse variance measured
   while it trains (``x0_variance``, :class:`shared.processes.ResShiftScheduler`).

The networks are the shipped model's (``UNet2DModel``, 64/96/128 channels, 4 x 4 pixel unshuffle) with input
channels for the dataset's static fields; weights start fresh. ``max_minutes`` bounds the wall time of each
stage (Lightning's ``max_time``); a few minutes on a CPU gives a usable mean, the residual stage wants more.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path
from typing import Optional, Sequence

from shared.files import InputError

#: the shipped model's backbone (experiments/science/downscale_regression.yaml), input channels aside
BACKBONE = {"class": "UNet2DModel", "block_out_channels": [64, 96, 128], "layers_per_block": 1,
            "down_block_types": ["DownBlock2D"] * 3, "up_block_types": ["UpBlock2D"] * 3, "norm_num_groups": 16}
UNSHUFFLE = 4
#: the shipped model's process (experiments/science/downscale_resshift.yaml), ``sigma_data`` aside
RESSHIFT = {"class": "ResShiftScheduler", "num_train_timesteps": 4, "kappa": 0.2, "min_noise_level": 0.02,
            "etas_end": 0.99, "power": 0.3}


def residual_scale(regression, patches, batches: int = 8, batch_size: int = 16) -> float:
    """RMS of the regression mean's residual ``x0 - D(y)`` over ``batches`` batches of training ``patches``
    (the ``sigma_data`` of the second stage), at least 1e-3."""
    import torch
    from torch.utils.data import DataLoader

    total, count = 0.0, 0
    regression.eval()
    with torch.no_grad():
        for i, batch in enumerate(DataLoader(patches, batch_size=batch_size)):
            if i == batches:
                break
            zero = torch.zeros(batch["y"].shape[0], dtype=torch.long)
            mean = regression(batch["y"], zero, batch["y"], batch.get("cond"))
            total += float(torch.sum((batch["x0"] - mean) ** 2))
            count += batch["x0"].numel()
    return max(float(f"{(total / max(count, 1)) ** 0.5:.3g}"), 1e-3)


def check_dataset(ds, var: str, factor: int, static: Sequence[str]) -> None:
    """One-line :class:`InputError` for a missing variable, a grid that does not divide, an all-NaN field, or
    static fields on another grid."""
    from .fields import spatial_dims

    if var not in ds:
        raise InputError(f"no variable {var!r} in the dataset (it has {', '.join(map(str, ds.data_vars)) or 'none'})")
    if int(factor) < 2:
        raise InputError(f"the factor must be an integer >= 2, got {factor}")
    lat, lon = spatial_dims(ds[var])
    h, w = ds.sizes[lat], ds.sizes[lon]
    if h % factor or w % factor:
        raise InputError(f"the {h} x {w} grid does not divide by the factor {factor}")
    if not bool(ds[var].notnull().any()):
        raise InputError(f"the variable {var!r} is NaN everywhere")
    for name in static:
        if name not in ds:
            raise InputError(f"no static variable {name!r} in the dataset")
        if set(ds[name].dims) != {lat, lon}:
            raise InputError(f"the static field {name!r} has dimensions {tuple(ds[name].dims)}, "
                             f"not the variable's grid ({lat}, {lon})")


def fit(ds, var: str, factor: int, static: Sequence[str] = (), max_minutes: float = 10.0, patch: int = 64,
        batch_size: int = 16, accelerator: str = "auto", progress: bool = True, seed: int = 0,
        workdir: Optional[str] = None):
    """Train both stages on ``ds`` (module docstring) and return the :class:`.downscaler.Downscaler`."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        raise InputError("fitting needs the training extra (Lightning): pip install -e '.[train]'") from None

    from shared.checkpoints import load_denoiser
    from shared.training import ConditionalDiffusionModule

    from .data import DownscaleData
    from .downscaler import Downscaler
    from .fields import spatial_dims

    static = list(static)
    check_dataset(ds, var, factor, static)
    lat, lon = spatial_dims(ds[var])
    side = min(ds.sizes[lat], ds.sizes[lon]) // factor * factor
    patch = min(int(patch), side) // 16 * 16 if side >= 16 else 0
    if patch < 16 or patch % factor:
        raise InputError(f"the {ds.sizes[lat]} x {ds.sizes[lon]} grid is too small to train on at factor {factor} "
                         "(a training patch needs at least 16 x 16 cells and a multiple of the factor)")
    times = [d for d in ds[var].dims if d not in (lat, lon)]
    by = "time" if times and int(ds[var].size // (ds.sizes[lat] * ds.sizes[lon])) > 1 else "region"
    data = DownscaleData(var=var, static=static, factor=factor, patch=patch, split_by=by,
                         batch_size=batch_size, steps_per_epoch=200, val_size=16, seed=seed, dataset=ds)
    data.setup()
    channels = 1 + len(static) + int(data.settings["mask_channel"])
    per_stage = datetime.timedelta(minutes=float(max_minutes) / 2)
    root = Path(workdir or tempfile.mkdtemp(prefix="downscale_fit_"))

    def train(name: str, process: dict, in_channels: int, predictor: Optional[str] = None) -> Path:
        pl.seed_everything(seed, verbose=False)
        backbone = dict(BACKBONE, in_channels=in_channels * UNSHUFFLE**2, out_channels=UNSHUFFLE**2)
        skip = 0.0 if process.get("sigma_data") else 1.0   # a preconditioned process forms x0_hat itself
        module = ConditionalDiffusionModule(backbone, process, unshuffle=UNSHUFFLE, skip=skip,
                                            concat_y=predictor is not None, lr=4e-4, warmup_steps=100,
                                            ema_decay=0.99, ema_start_step=100, val_steps=None,
                                            export_dir=str(root / name), export_every_n_steps=10**9,
                                            extra={"task": "downscaling", "role": name}, predictor=predictor,
                                            zero_output=True, x0_variance_every=10 if predictor else 0)
        trainer = pl.Trainer(max_time=per_stage, max_steps=-1, accelerator=accelerator, devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                             limit_val_batches=0, gradient_clip_val=1.0, reload_dataloaders_every_n_epochs=1)
        trainer.fit(module, datamodule=data)
        return root / name

    regression = train("regression", {"class": "DirectPrediction"}, channels)
    sigma_data = residual_scale(load_denoiser(regression)[0], data.train_set, batch_size=batch_size)
    diffusion = train("diffusion", dict(RESSHIFT, sigma_data=sigma_data), 2 + channels, predictor=str(regression))
    return Downscaler(load_denoiser(regression)[0], load_denoiser(diffusion)[0], data.settings, "cpu")

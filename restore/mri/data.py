"""Training and validation pairs for MRI reconstruction (Lightning data module).

Each item is one simulated acquisition (:func:`restore.mri.simulate.simulate`) of a real slice
(:mod:`restore.mri.volumes`, split by volume), as the model sees it:

* ``x0``: the complex target image, two channels ``(2, h, w)``;
* ``y``: the zero-filled, coil-combined image ``A^H y`` (the residual-shift process starts there);
* ``cond``: the measured columns as an image plane ``(1, h, w)`` (1 measured, 0 not);

all divided by the scale ``s = max |A^H y|`` of the whole slice, the normalisation the pipeline
uses at inference (:func:`slice_scale`), so the model works at unit scale whatever the scanner's.
Training draws a random slice, orientation, flip, voxel size and contrast (:func:`augment`),
acceleration (4 or 8), mask (random or equispaced), coil count (single-coil or 8-16 coils) and noise
level. With ``patch_size`` the slice is cropped to a square window first and the window is what the scanner
acquires: its aliasing comes from its own content only, folded with the window's width as its period, as in a
whole slice. (A window cut from a whole-slice acquisition carries aliasing folded in from columns outside it,
which the window cannot predict.) Validation is a fixed set of whole slices of the validation volume at 4x
random single-coil and 8x equispaced 8-coil.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset

from shared.complex import complex_to_channels

from .fourier import slice_scale
from .simulate import Acquisition, simulate
from .volumes import ORIENTATIONS, fit, split_slices

#: Multi-coil acquisitions draw their coil count from this range (inclusive).
COILS = (8, 16)
#: Validation slices are padded/cropped to this size (a multiple of the backbones' grid).
VAL_SIZE = (128, 96)


#: Training slices are resampled to ``1/zoom`` times their voxel size, ``zoom ~ U(ZOOM)``: the 1 mm
#: (and 0.5 mm) training volumes then also look like 2 mm clinical slices (the validation subject's).
ZOOM = (0.5, 1.0)
#: Contrast curve ``m -> m ** gamma``, ``log gamma ~ U(log GAMMA)``: other T1 weightings and windows.
GAMMA = (0.7, 1.4)


def augment(image: np.ndarray, rng: np.random.Generator, min_size: int = 0) -> np.ndarray:
    """A random left-right flip, resampling by ``zoom ~ U(ZOOM)`` (bilinear, antialiased) and
    contrast ``m ** gamma`` of a magnitude slice in [0, 1]; sides made even and zero-padded to at
    least ``min_size``."""
    if rng.random() < 0.5:
        image = image[:, ::-1]
    zoom = rng.uniform(*ZOOM)
    h, w = image.shape
    size = (max(2, round(h * zoom)), max(2, round(w * zoom)))
    out = torch.nn.functional.interpolate(torch.from_numpy(np.ascontiguousarray(image))[None, None], size=size,
                                          mode="bilinear", antialias=True, align_corners=False)[0, 0]
    out = out.clamp(0.0, 1.0).numpy() ** np.exp(rng.uniform(*np.log(GAMMA)))
    target = tuple(max(min_size, n - n % 2) for n in out.shape)
    return fit(out.astype(np.float32), target)


def as_item(acq: Acquisition) -> dict[str, torch.Tensor]:
    """The model's view of one acquisition (see the module docstring)."""
    zero_filled = acq.zero_filled()
    s = slice_scale(zero_filled)
    x0 = complex_to_channels((acq.target / s)[None, None])[0]
    y = complex_to_channels((zero_filled / s)[None, None])[0]
    cond = acq.mask.reshape(1, 1, -1).expand(1, *x0.shape[-2:]).float()
    return {"x0": x0, "y": y, "cond": cond.contiguous()}


def crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` window of the last two axes of ``image`` (whole axes that are smaller)."""
    h, w = image.shape[-2:]
    top = int(rng.integers(0, max(1, h - size + 1)))
    left = int(rng.integers(0, max(1, w - size + 1)))
    return image[..., top:top + size, left:left + size]


class SimulatedSlices(Dataset):
    """Random acquisitions of the slices of ``split`` (index ``i`` always gives the same item)."""

    def __init__(self, split: str = "train", patch_size: Optional[int] = 96, length: int = 10_000,
                 snr_db: tuple[float, float] = (20.0, 40.0), p_noise: float = 0.5, p_multicoil: float = 0.5,
                 seed: int = 0):
        stacks = split_slices(split, ORIENTATIONS)
        self.slices = [s for stack in stacks.values() for s in stack]
        if not self.slices:
            raise RuntimeError(f"no MR slices for split {split!r}: run `make data` and install the [train] extra")
        self.patch_size, self.length, self.seed = patch_size, length, seed
        self.snr_db, self.p_noise, self.p_multicoil = snr_db, p_noise, p_multicoil

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        image = augment(self.slices[int(rng.integers(len(self.slices)))], rng, self.patch_size or 0)
        if self.patch_size:
            image = np.ascontiguousarray(crop(image, self.patch_size, rng))
        acq = simulate(image, acceleration=int(rng.choice([4, 8])),
                       mask=str(rng.choice(["random", "equispaced"])),
                       coils=int(rng.integers(COILS[0], COILS[1] + 1)) if rng.random() < self.p_multicoil else None,
                       snr_db=float(rng.uniform(*self.snr_db)) if rng.random() < self.p_noise else None,
                       seed=rng)
        return as_item(acq)


def validation_items(per_setting: int = 4, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Whole slices of the validation volume, evenly spaced through its axial stack, at 4x random
    single-coil and 8x equispaced 8-coil (noise-free; fixed seeds)."""
    stacks = split_slices("val", ("axial",), size=VAL_SIZE)
    stack = next(iter(stacks.values()))
    picks = np.linspace(0, len(stack) - 1, per_setting + 2).round().astype(int)[1:-1]
    items = []
    for i, k in enumerate(picks):
        items.append(as_item(simulate(stack[k], acceleration=4, mask="random", seed=seed + i)))
        items.append(as_item(simulate(stack[k], acceleration=8, mask="equispaced", coils=8, seed=seed + 100 + i)))
    return items


class MRIReconstructionData(pl.LightningDataModule):
    """Random training patches and fixed validation slices for :mod:`restore.mri`."""

    def __init__(self, patch_size: int = 96, batch_size: int = 8, num_workers: int = 1, epoch_length: int = 8000,
                 val_per_setting: int = 4, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: Optional[str] = None) -> None:
        hp = self.hparams
        self.train_set = SimulatedSlices("train", hp.patch_size, hp.epoch_length, seed=hp.seed)
        self.val_set = validation_items(hp.val_per_setting, hp.seed)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(self.train_set, batch_size=hp.batch_size, shuffle=True, num_workers=hp.num_workers,
                          drop_last=True, persistent_workers=hp.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1, shuffle=False)   # whole slices: one size per item

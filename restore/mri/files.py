"""fastMRI's HDF5 files: undersampled k-space in, reconstructions out.

Input layout (as the fastMRI challenge's test files): a dataset ``kspace``, complex,
``(slices, H, W)`` single-coil or ``(slices, coils, H, W)`` multi-coil, zeros where nothing was
measured; optionally ``mask`` ``(W,)`` (1 where a column was measured; derived from the non-zero
columns when absent), ``coil_maps`` of ``kspace``'s shape (multi-coil sensitivities) and attributes such as ``acceleration`` and ``num_low_frequency``.
:class:`KSpaceFile` checks all of it once, slice by slice (non-finite values, the mask against
the columns), before any reconstruction, and then hands out one slice at a time, so a volume is
never held whole.

Output: ``reconstruction`` float32 ``(slices, H, W)`` (magnitude; root-sum-of-squares for
multi-coil) and, when several samples were drawn, ``reconstruction_std`` beside it; the input's
attributes are carried over. Written atomically (:func:`shared.files.atomic_write`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from shared.files import InputError, atomic_write


class KSpaceFile:
    """An opened, checked fastMRI k-space file; use as a context manager.

    Attributes:
        path: the file.
        shape: ``kspace``'s shape; ``coils`` is None for single-coil data.
        mask: ``(W,)`` float32, 1 where a column was measured.
        attrs: the file's attributes (``acceleration``, ``num_low_frequency``, ...).
    """

    def __init__(self, path: str | Path):
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        if not h5py.is_hdf5(self.path):
            raise InputError(f"{self.path}: not an HDF5 file")
        self._file = h5py.File(self.path, "r")
        try:
            self._check()
        except BaseException:
            self._file.close()
            raise

    def _check(self) -> None:
        f, name = self._file, self.path
        if "kspace" not in f:
            raise InputError(f"{name}: no 'kspace' dataset (found: {', '.join(sorted(f)) or 'nothing'})")
        ks = f["kspace"]
        if ks.ndim not in (3, 4):
            raise InputError(f"{name}: kspace must be (slices, H, W) or (slices, coils, H, W), got shape {ks.shape}")
        if ks.dtype.kind != "c":
            raise InputError(f"{name}: kspace must be complex, got {ks.dtype}")
        if 0 in ks.shape:
            raise InputError(f"{name}: kspace is empty (shape {ks.shape})")
        self.kspace, self.shape = ks, tuple(ks.shape)
        self.coils = self.shape[1] if ks.ndim == 4 else None
        self.attrs = dict(f.attrs)
        measured = self._scan()
        self.mask = self._read_mask() if "mask" in f else measured.astype(np.float32)
        if not self.mask.any():
            raise InputError(f"{name}: no measured k-space column (the mask, or the k-space, is all zeros)")

    def _scan(self) -> np.ndarray:
        """One pass over the slices: refuse non-finite values; return the columns holding data."""
        measured = np.zeros(self.width, dtype=bool)
        for i in range(self.slices):
            k = self.slice(i)
            if not np.isfinite(k).all():
                raise InputError(f"{self.path}: kspace slice {i} contains NaN or infinite values")
            measured |= (k != 0).reshape(-1, self.width).any(axis=0)
        return measured

    def _read_mask(self) -> np.ndarray:
        mask = np.asarray(self._file["mask"]).reshape(-1)
        if mask.shape[0] != self.width:
            raise InputError(f"{self.path}: mask has {mask.shape[0]} entries but kspace has {self.width} columns")
        return (mask != 0).astype(np.float32)

    @property
    def slices(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[-2]

    @property
    def width(self) -> int:
        return self.shape[-1]

    @property
    def has_coil_maps(self) -> bool:
        """A ``coil_maps`` dataset of ``kspace``'s shape (multi-coil sensitivities) is present."""
        return "coil_maps" in self._file and tuple(self._file["coil_maps"].shape) == self.shape

    def coil_maps(self, index: int) -> np.ndarray:
        """Coil sensitivities of slice ``index``, complex64 ``(coils, H, W)``."""
        return np.asarray(self._file["coil_maps"][index]).astype(np.complex64, copy=False)

    def slice(self, index: int) -> np.ndarray:
        """Slice ``index`` of ``kspace``, complex64 ``(H, W)`` or ``(coils, H, W)``."""
        return np.asarray(self.kspace[index]).astype(np.complex64, copy=False)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "KSpaceFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_reconstruction(path: str | Path, reconstruction: np.ndarray, std: Optional[np.ndarray] = None,
                         attrs: Optional[dict] = None) -> None:
    """Write ``reconstruction`` ``(slices, H, W)`` float32 (and ``reconstruction_std`` of the same
    shape) with ``attrs`` to a new fastMRI-layout file, atomically."""
    import h5py

    reconstruction = np.asarray(reconstruction, dtype=np.float32)
    if reconstruction.ndim != 3:
        raise ValueError(f"reconstruction must be (slices, H, W), got shape {reconstruction.shape}")
    if std is not None and np.shape(std) != reconstruction.shape:
        raise ValueError(f"reconstruction_std {np.shape(std)} must match the reconstruction {reconstruction.shape}")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("reconstruction", data=reconstruction)
            if std is not None:
                f.create_dataset("reconstruction_std", data=np.asarray(std, dtype=np.float32))
            for key, value in (attrs or {}).items():
                f.attrs[key] = value

    atomic_write(path, write)

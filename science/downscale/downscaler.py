"""``Downscaler``: a coarse gridded field to an ensemble on the ``F`` times finer grid, xarray in and out.

    from science.downscale import Downscaler
    ds = Downscaler.from_pretrained()                              # the shipped model, never downloads
    fine = ds.predict(coarse, static=altitude, members=16)          # xr.Dataset: (member, ..., lat, lon)

CorrDiff's two stages (:mod:`.data` for the inputs the networks see)::

    mean   = D(up_F(coarse), statics)                               the regression network
    member = mean + r,  r ~ the residual process from the mean       ResShift (T = 4, ours) or EDM (CorrDiff)

The coarse field is standardised, interpolated bilinearly onto the fine grid, and both networks run on the
whole grid tile by tile (:func:`shared.tiling.tiled_denoiser`: the sampler's noise is drawn once for the
whole field and sliced per tile, so overlaps keep the ensemble's spread). Member ``k`` draws from its own
generator (seeded ``seed + k``): a member is the same whatever the ensemble size. Cells whose whole coarse
block is NaN (land in a sea-surface field) are NaN in every member.

The fine grid's coordinates are the coarse cell centres split in ``F``: ``c_I + (k + 1/2 - F/2) d / F``,
``k = 0..F-1`` (``d`` the coarse spacing, which must be regular). Every attribute of the input is kept
(global and per variable: units, standard_name, long_name), and a line is added to ``history``.
"""

from __future__ import annotations

import datetime
import functools
import os
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from shared.checkpoints import load_denoiser
from shared.files import InputError, device_from_string
from shared.pipeline import Pipeline, RunInfo, as_dtype
from shared.samplers import sample
from shared.tiling import pad_to_multiple, tiled_apply, tiled_denoiser

from .data import Standardiser, upsample

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = WEIGHTS_DIR / "linke_x8"
METHODS = ("diffusion", "regression")


def fine_coordinate(coarse: np.ndarray, factor: int, name: str = "coordinate") -> np.ndarray:
    """The fine cell centres of a regular coarse axis: ``c_I + (k + 1/2 - F/2) d / F`` for ``k = 0..F-1``."""
    c = np.asarray(coarse, dtype=np.float64)
    if c.size < 2:
        raise InputError(f"the coarse {name} needs at least 2 cells to define its spacing")
    d = np.diff(c)
    if not np.allclose(d, d[0], rtol=1e-4, atol=1e-9 * max(abs(float(d[0])), 1.0)):
        raise InputError(f"the coarse {name} is not regularly spaced")
    k = (np.arange(factor) + 0.5 - factor / 2) * d[0] / factor
    return (c[:, None] + k[None, :]).ravel()


class Downscaler(Pipeline):
    """Ensembles of a coarse field on the fine grid (module docstring). ``settings`` is the training data's
    (:attr:`.data.DownscaleData.settings`): ``var``, ``factor``, ``static``, ``mask_channel``, ``norm``."""

    def __init__(self, regression, diffusion, settings: dict, device: torch.device | str = "cpu",
                 torch_dtype=torch.float32, tile: Optional[int] = None, overlap: Optional[int] = None):
        self.regression, self.diffusion, self.settings = regression, diffusion, dict(settings)
        self.norm = Standardiser.from_dict(self.settings["norm"])
        self.factor, self.var = int(self.settings["factor"]), self.settings["var"]
        # tiles of the training patch by default: the networks' GroupNorm then sees what it saw in training
        self.tile = int(tile or self.settings.get("patch", 256))
        self.overlap = int(overlap if overlap is not None else self.tile // 4)
        self.last_run = RunInfo()
        self.source: Optional[Path] = None         #: the folder it was loaded from (dask workers load it)
        self.to(device, torch_dtype)

    def modules(self):
        return iter([m for m in (self.regression, self.diffusion) if m is not None])

    @classmethod
    def from_pretrained(cls, path: Optional[str | os.PathLike] = None, device: str = "auto",
                        torch_dtype=torch.float32, diffusion: str = "diffusion") -> "Downscaler":
        """Load ``path/regression`` and ``path/<diffusion>`` (``path`` None: the shipped model); never downloads."""
        folder = DEFAULT_MODEL if path is None else Path(path)
        if not (folder / "regression" / "model.json").is_file():
            raise InputError(f"{folder}: no downscaling model there (regression/model.json missing)")
        dev = device_from_string(device)
        regression, meta = load_denoiser(folder / "regression", device=dev)
        model = None
        if (folder / diffusion / "model.json").is_file():
            model, _ = load_denoiser(folder / diffusion, device=dev)
        out = cls(regression, model, meta["extra"], dev, as_dtype(torch_dtype))
        out.source = folder if diffusion == "diffusion" else None
        return out

    @classmethod
    def fit(cls, fine, var: str, factor: int, static: Optional[Sequence[str]] = None, max_minutes: float = 10.0,
            **kwargs) -> "Downscaler":
        """Train a downscaler on ``fine`` (an ``xr.Dataset`` on the fine grid: ``var`` with any other
        dimensions, NaN allowed; ``static`` names its static fields) for at most ``max_minutes``
        (:mod:`.fitting`)."""
        from .fitting import fit

        return fit(fine, var, int(factor), list(static or []), max_minutes, **kwargs)

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """``path/regression`` and ``path/diffusion`` (safetensors + JSON), loadable by :meth:`from_pretrained`."""
        from shared.checkpoints import save_denoiser

        root = Path(path)
        save_denoiser(self.regression, root / "regression", extra=dict(self.settings, role="regression mean"))
        if self.diffusion is not None:
            save_denoiser(self.diffusion, root / "diffusion", extra=dict(self.settings, role="residual from the mean"))
        return root

    # ----------------------------------------------------------------- one field
    @torch.no_grad()
    def fields(self, coarse: np.ndarray, static: Optional[np.ndarray] = None, members: int = 16,
               num_inference_steps: Optional[int] = None, seed: int = 0, method: str = "diffusion") -> np.ndarray:
        """``(M, F h, F w)`` fine fields of one coarse field ``(h, w)`` (NaN = missing block) in its units;
        ``static (S, F h, F w)`` in their units. ``method="regression"``: the mean alone (``M = 1``)."""
        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        if method == "diffusion" and self.diffusion is None:
            raise InputError("this model has no diffusion stage; use method='regression'")
        f, (h, w) = self.factor, coarse.shape
        z = torch.from_numpy(((np.asarray(coarse, np.float64) - self.norm.mean) / self.norm.std).astype(np.float32))
        y = upsample(z, f)[None, None].to(self.device, self.dtype)                       # (1, 1, H, W)
        cond = self._conditioning(static, np.isnan(coarse), (h * f, w * f))
        multiple = max(m.grid_multiple for m in self.modules())
        y, size = pad_to_multiple(y, multiple)
        cond = pad_to_multiple(cond, multiple)[0] if cond is not None else None
        zero = torch.zeros(1, dtype=torch.long, device=self.device)
        mean = tiled_apply(lambda s: self.regression(s[:, :1], zero, s[:, :1], s[:, 1:] if cond is not None else None),
                           torch.cat([y] + ([cond] if cond is not None else []), 1), self.tile, self.overlap)
        self.last_run.network_evaluations += 1
        if method == "regression":
            out = mean
        else:
            m = int(members)
            if m < 1:
                raise InputError(f"members must be >= 1, got {members}")
            raw = torch.cat([y] + ([cond] if cond is not None else []), 1).expand(m, -1, -1, -1)
            mean_m = mean.expand(m, -1, -1, -1)
            denoise = tiled_denoiser(self.diffusion, mean_m, raw, self.tile, self.overlap)
            generators = [torch.Generator().manual_seed(int(seed) + k) for k in range(m)]
            out, nfe = sample(denoise, self.diffusion.process, mean_m, num_inference_steps=num_inference_steps,
                              generator=generators)
            self.last_run.network_evaluations += nfe
        out = out[:, 0, :size[0], :size[1]].float().cpu().numpy() * self.norm.std + self.norm.mean
        gone = np.repeat(np.repeat(np.isnan(coarse), f, 0), f, 1)
        out[:, gone] = np.nan
        return out

    def _conditioning(self, static: Optional[np.ndarray], coarse_nan: np.ndarray, shape) -> Optional[torch.Tensor]:
        channels = []
        names = self.settings.get("static") or []
        if names:
            if static is None:
                raise InputError(f"this model needs the static field{'s' * (len(names) > 1)} {', '.join(names)} "
                                 "on the fine grid (static=...)")
            s = np.asarray(static, dtype=np.float64)
            if s.shape != (len(names), *shape):
                raise InputError(f"static fields of shape {s.shape[1:]} do not match the fine grid {tuple(shape)}")
            channels += [np.nan_to_num((s[k] - m) / sd) for k, (m, sd) in enumerate(self.norm.static)]
        if self.settings.get("mask_channel"):
            channels.append(np.repeat(np.repeat(coarse_nan, self.factor, 0), self.factor, 1).astype(np.float64))
        if not channels:
            return None
        return torch.from_numpy(np.stack(channels).astype(np.float32))[None].to(self.device, self.dtype)

    # ----------------------------------------------------------------- xarray
    def predict(self, coarse, static=None, members: int = 16, num_inference_steps: Optional[int] = None,
                seed: int = 0, method: str = "diffusion", progress=None):
        """The fine-grid ensemble of ``coarse`` (an ``xr.Dataset`` holding the model's variable, or that
        ``xr.DataArray``) as an ``xr.Dataset``: the variable with dimensions ``(member, <other>, lat, lon)`` on
        the fine coordinates, every attribute kept and a ``history`` line added. ``static``: an
        ``xr.Dataset`` with the model's static fields on (at least) the fine grid; cells are matched by the
        nearest coordinate. Every other dimension (time, level ...) is downscaled field by field, member
        ``k`` with seed ``seed + k`` in every field, so the numbers do not depend on how the work is split.

        A dask-backed input stays lazy: the result is a dask array computed chunk by chunk over the other
        dimensions (``xr.apply_ufunc(dask="parallelized")``; the spatial dimensions are never chunked), by
        whatever scheduler is active, a ``dask.distributed`` cluster included (its workers load the model
        from its folder; a model from :meth:`fit` is saved to a temporary folder first)."""
        import xarray as xr

        from .fields import spatial_dims

        if method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        da, attrs = self._variable(coarse)
        lat, lon = spatial_dims(da)
        f = self.factor
        fine_lat = fine_coordinate(da[lat].values, f, lat)
        fine_lon = fine_coordinate(da[lon].values, f, lon)
        static_values = self._static(static, lat, lon, fine_lat, fine_lon)
        lazy = da.chunks is not None
        if not lazy and not np.isfinite(da.values).any():
            raise InputError(f"the variable {self.var!r} is NaN everywhere")
        m = 1 if method == "regression" else int(members)
        if m < 1:
            raise InputError(f"members must be >= 1, got {members}")
        start, self.last_run = datetime.datetime.now(), RunInfo(method=method)
        job = dict(static=static_values, members=m, steps=num_inference_steps, seed=int(seed), method=method)
        if lazy:
            source = self.source or self.save_pretrained(tempfile.mkdtemp(prefix="downscaler_"))
            function = functools.partial(_downscale_block, source=str(source), device=str(self.device), **job)
            da = da.chunk({lat: -1, lon: -1})
        else:
            function = functools.partial(self._downscale_fields, progress=progress, **job)
        out = xr.apply_ufunc(function, da, input_core_dims=[[lat, lon]], output_core_dims=[["member", lat, lon]],
                             exclude_dims={lat, lon}, dask="parallelized", output_dtypes=[np.float32],
                             dask_gufunc_kwargs={"output_sizes": {"member": m, lat: len(fine_lat), lon: len(fine_lon)}},
                             keep_attrs=True)
        other = [d for d in out.dims if d not in ("member", lat, lon)]
        out = out.transpose("member", *other, lat, lon).assign_coords(
            {"member": np.arange(m), lat: (lat, fine_lat, dict(da[lat].attrs)),
             lon: (lon, fine_lon, dict(da[lon].attrs))})
        out.name = self.var
        self.last_run.seconds = (datetime.datetime.now() - start).total_seconds()
        result = xr.Dataset({self.var: out}, attrs=attrs)
        steps = "" if method == "regression" else f", {num_inference_steps or self.default_steps} steps"
        line = (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ} science.downscale: {self.var} "
                f"downscaled x{f} ({method}, {m} member{'s' * (m > 1)}{steps})")
        result.attrs["history"] = (attrs.get("history", "") + "\n" + line).strip()
        return result

    @property
    def default_steps(self) -> int:
        """The diffusion stage's default number of sampler steps."""
        return int(self.diffusion.process.config.num_train_timesteps) if self.diffusion is not None else 0

    def _downscale_fields(self, values: np.ndarray, static, members: int, steps, seed: int, method: str,
                          progress=None) -> np.ndarray:
        """``(..., h, w)`` coarse fields to ``(..., M, F h, F w)``, field by field (:meth:`fields`)."""
        lead, (h, w) = values.shape[:-2], values.shape[-2:]
        flat = values.reshape(-1, h, w)
        out = np.empty((len(flat), members, h * self.factor, w * self.factor), dtype=np.float32)
        for i, field in enumerate(flat):
            out[i] = self.fields(field, static, members, steps, seed, method)
            if progress is not None:
                progress(i + 1)
        return out.reshape(*lead, *out.shape[1:])

    def _variable(self, coarse):
        import xarray as xr

        if isinstance(coarse, xr.Dataset):
            if self.var not in coarse:
                raise InputError(f"the dataset has no variable {self.var!r} (this model downscales {self.var!r}; "
                                 f"it has {', '.join(map(str, coarse.data_vars)) or 'none'})")
            return coarse[self.var], dict(coarse.attrs)
        if isinstance(coarse, xr.DataArray):
            if coarse.name is not None and coarse.name != self.var:
                raise InputError(f"this model downscales {self.var!r}, not {coarse.name!r}")
            return coarse, {}
        raise InputError("predict takes an xarray Dataset or DataArray")

    def _static(self, static, lat: str, lon: str, fine_lat: np.ndarray, fine_lon: np.ndarray) -> Optional[np.ndarray]:
        names: Sequence[str] = self.settings.get("static") or []
        if not names:
            return None
        if static is None:
            raise InputError(f"this model needs the static field{'s' * (len(names) > 1)} {', '.join(names)} "
                             "on the fine grid (static=...)")
        missing = [n for n in names if n not in static]
        if missing:
            raise InputError(f"the static dataset has no {', '.join(map(repr, missing))}")
        tol_lat = abs(fine_lat[1] - fine_lat[0]) / 2 if len(fine_lat) > 1 else None
        tol_lon = abs(fine_lon[1] - fine_lon[0]) / 2 if len(fine_lon) > 1 else None
        try:
            picked = [static[n].sel({lat: fine_lat}, method="nearest", tolerance=tol_lat)
                      .sel({lon: fine_lon}, method="nearest", tolerance=tol_lon).transpose(lat, lon).values
                      for n in names]
        except KeyError:
            raise InputError("the static fields' grid does not cover the fine grid of the input") from None
        return np.stack(picked)


@functools.lru_cache(maxsize=4)
def _loaded(source: str, device: str) -> Downscaler:
    """One model per folder and process (a dask worker loads it once)."""
    torch.set_num_threads(1)
    return Downscaler.from_pretrained(source, device=device)


def _downscale_block(values: np.ndarray, source: str, device: str, **job) -> np.ndarray:
    """A dask chunk ``(..., h, w)`` to ``(..., M, F h, F w)`` with the model of ``source``."""
    return _loaded(source, device)._downscale_fields(values, **job)

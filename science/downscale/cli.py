"""Command line: ``python -m science.downscale fit ...`` and ``python -m science.downscale predict ...``.

    python -m science.downscale predict coarse.nc -o fine.nc --static altitude.nc --members 16
    python -m science.downscale predict coarse.zarr -o fine.zarr --chunks time=8 --scheduler tcp://host:8786
    python -m science.downscale fit fine.nc --var tas --factor 4 -o my_model --static orog.nc:orog --max-minutes 30

``predict`` writes the ensemble (a ``member`` dimension) on the fine grid, every attribute of the input kept
and a ``history`` line added; ``--chunks`` opens the input lazily with dask (chunks over the non-spatial
dimensions) and ``--scheduler`` computes them on a ``dask.distributed`` cluster. ``fit`` trains both stages
(:mod:`.fitting`) on a fine-grid dataset (the coarse input is its block mean) and saves the model folder.
NetCDF (``.nc``, read and written with h5netcdf) and Zarr (``.zarr`` folders) in and out; outputs are
written to a temporary file or folder and renamed into place, so a failed run leaves nothing. Errors are
one line naming the file; heavy libraries load only after the arguments are checked.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Optional

from shared.cli import fail

KINDS = (".nc", ".zarr")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m science.downscale",
                                description="Downscale gridded fields to an ensemble on a finer grid (CorrDiff-like: "
                                            "a regression mean plus a residual-shift diffusion).")
    sub = p.add_subparsers(dest="command", required=True)
    pr = sub.add_parser("predict", help="coarse field(s) -> fine-grid ensemble")
    pr.add_argument("input", help="coarse fields: .nc or .zarr")
    pr.add_argument("-o", "--output", required=True, help="output .nc or .zarr")
    pr.add_argument("--model", default=None, help="model folder (default: the shipped Linke turbidity x8 model)")
    pr.add_argument("--members", type=int, default=16, help="ensemble members (default 16)")
    pr.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's, 4)")
    pr.add_argument("--method", choices=("diffusion", "regression"), default="diffusion",
                    help="diffusion: the ensemble (default); regression: the mean alone, one member")
    pr.add_argument("--factor", type=int, default=None, help="check that the model downscales by this factor")
    pr.add_argument("--static", default=None, metavar="FILE",
                    help="the model's static fields on the fine grid (.nc or .zarr); the shipped model "
                         "reads pvlib's altitude grid itself")
    pr.add_argument("--chunks", default=None, metavar="DIM=N",
                    help="open the input lazily with dask, N steps of DIM per chunk (e.g. time=8)")
    pr.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="compute on this dask.distributed scheduler (e.g. tcp://127.0.0.1:8786)")
    pr.add_argument("--seed", type=int, default=0, help="member k draws with seed + k")
    pr.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps (default auto)")
    pr.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    ft = sub.add_parser("fit", help="train a downscaler on a fine-grid dataset")
    ft.add_argument("input", help="fine-grid fields: .nc or .zarr")
    ft.add_argument("--var", required=True, help="the variable to downscale")
    ft.add_argument("--factor", type=int, required=True, help="coarsening factor (the grid must divide by it)")
    ft.add_argument("-o", "--output", required=True, help="model folder to write")
    ft.add_argument("--static", action="append", default=[], metavar="FILE:VAR",
                    help="a static input on the fine grid (repeatable); VAR of the input itself: just VAR")
    ft.add_argument("--max-minutes", type=float, default=10.0, help="training time, both stages (default 10)")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--device", default="auto", help="cpu, cuda, mps (default auto)")
    ft.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    return p


def kind(path: str) -> str:
    return Path(path).suffix.lower()


def check_args(args) -> Optional[str]:
    """The first problem with the arguments, or None (nothing read, nothing heavy imported)."""
    files = ("input", "output", "static") if args.command == "predict" else ("input",)
    for name in (n for n in files if getattr(args, n)):
        value = getattr(args, name)
        if kind(value) not in KINDS:
            return f"{value}: must be a .nc file or a .zarr store"
    if not Path(args.input).exists():
        return f"{args.input}: no such file"
    if Path(args.output).resolve() == Path(args.input).resolve():
        return f"{args.output}: the output would overwrite the input; choose another path"
    if args.command == "predict":
        if args.members < 1:
            return f"--members must be >= 1, got {args.members}"
        if args.steps is not None and args.steps < 1:
            return f"--steps must be >= 1, got {args.steps}"
        if args.chunks is not None and not _parse_chunks(args.chunks):
            return f"--chunks {args.chunks}: expected DIM=N with N >= 1, e.g. time=8"
        if args.scheduler is not None and args.chunks is None:
            return "--scheduler needs --chunks (the work is split by chunks)"
    else:
        if args.factor < 2:
            return f"--factor must be >= 2, got {args.factor}"
        if not args.max_minutes > 0:
            return f"--max-minutes must be > 0, got {args.max_minutes}"
    return None


def _parse_chunks(text: str) -> Optional[dict]:
    dim, _, n = text.partition("=")
    return {dim: int(n)} if dim and n.isdigit() and int(n) >= 1 else None


def open_dataset(path: str, chunks: Optional[dict] = None):
    """An ``xr.Dataset`` from a .nc file (h5netcdf) or a .zarr store; :class:`InputError` if unreadable."""
    import xarray as xr

    from shared.files import InputError

    try:
        if kind(path) == ".zarr":
            return xr.open_zarr(path, chunks=chunks)
        return xr.open_dataset(path, engine="h5netcdf", chunks=chunks)
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"{path}: cannot read as {'Zarr' if kind(path) == '.zarr' else 'NetCDF-4'} "
                         f"({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None


def write_dataset(ds, path: str) -> None:
    """Write ``ds`` to ``path`` (.nc or .zarr) atomically (computing it if lazy)."""
    from shared.files import atomic_directory, atomic_write

    if kind(path) == ".zarr":
        atomic_directory(path, lambda tmp: ds.to_zarr(tmp, mode="w"))
    else:
        atomic_write(path, lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def default_static(model, coarse):
    """pvlib's altitude grid for a model trained on the registry's Linke turbidity field (its static inputs
    come with the field), cropped to the input's extent; None for any other model."""
    if model.settings.get("field") != "linke_turbidity":
        return None
    from shared.files import InputError

    from .fields import FieldUnavailable, load, spatial_dims

    lat, lon = spatial_dims(coarse[model.var])
    pad = 1.0
    region = (float(coarse[lat].min()) - pad, float(coarse[lat].max()) + pad,
              float(coarse[lon].min()) - pad, float(coarse[lon].max()) + pad)
    try:
        return load("linke_turbidity", region=region, variables=list(model.settings["static"]))
    except FieldUnavailable as err:
        raise InputError(f"the model's static fields come from pvlib's altitude grid: {err}; "
                         "or give them with --static") from None


def predict(args) -> int:
    from shared.cli import progress
    from shared.files import InputError, device_from_string

    from .downscaler import Downscaler

    try:
        device_from_string(args.device)
        model = Downscaler.from_pretrained(args.model, device=args.device)
        if args.factor is not None and args.factor != model.factor:
            raise InputError(f"{args.model or 'the shipped model'}: trained for factor {model.factor}, "
                             f"not {args.factor}")
        coarse = open_dataset(args.input, _parse_chunks(args.chunks) if args.chunks else None)
        static = open_dataset(args.static) if args.static else default_static(model, coarse)
    except InputError as err:
        return fail(str(err))
    client = None
    if args.scheduler:
        from distributed import Client

        try:
            client = Client(args.scheduler, timeout="10s")
        except (OSError, TimeoutError) as err:
            return fail(f"--scheduler {args.scheduler}: cannot connect ({err})")
    start = time.perf_counter()
    try:
        bar = progress(count_fields(coarse, model), "field", args.quiet or bool(args.chunks))
        try:
            result = model.predict(coarse, static=static, members=args.members, num_inference_steps=args.steps,
                                   seed=args.seed, method=args.method, progress=lambda i: bar.update(1))
        finally:
            bar.close()
        write_dataset(result, args.output)
    except InputError as err:
        return fail(f"{args.input}: {err}")
    finally:
        if client is not None:
            client.close()
    if not args.quiet:
        var = result[model.var]
        print(f"{args.input} -> {args.output}: {model.var} x{model.factor}, {var.sizes['member']} member(s), "
              f"grid {var.shape[-2]} x {var.shape[-1]}, {time.perf_counter() - start:.1f} s")
    return 0


def count_fields(ds, model) -> int:
    """How many 2-D fields ``predict`` downscales: the product of the variable's non-spatial sizes."""
    from .fields import spatial_dims

    if model.var not in ds:
        return 1
    try:
        grid = spatial_dims(ds[model.var])
    except (KeyError, ValueError):
        return 1
    return int(math.prod(n for d, n in ds[model.var].sizes.items() if d not in grid))


def fit(args) -> int:
    import xarray as xr

    from shared.files import InputError, atomic_directory, device_from_string

    from .downscaler import Downscaler

    try:
        device = device_from_string(args.device)
        ds = open_dataset(args.input)
        names = []
        for spec in args.static:
            file, _, var = spec.rpartition(":")
            if not file:
                names.append(var)
                continue
            other = open_dataset(file)
            if var not in other:
                raise InputError(f"{file}: no variable {var!r}")
            grid = [d for d in other[var].dims]
            if any(d not in ds.dims or other.sizes[d] != ds.sizes[d] for d in grid):
                raise InputError(f"{file}: the static field {var!r} ({dict(other[var].sizes)}) is not on the "
                                 f"input's grid")
            ds = ds.assign({var: xr.DataArray(other[var].values, dims=grid, coords={d: ds[d] for d in grid})})
            names.append(var)
        accelerator = "gpu" if device.type == "cuda" else "cpu"
        model = Downscaler.fit(ds, args.var, args.factor, static=names, max_minutes=args.max_minutes,
                               progress=not args.quiet, accelerator=accelerator, seed=args.seed)
        atomic_directory(args.output, model.save_pretrained)
    except InputError as err:
        return fail(f"{args.input}: {err}" if not str(err).startswith(args.input) else str(err))
    if not args.quiet:
        print(f"{args.input} -> {args.output}: {args.var} x{args.factor} downscaler, static {names or 'none'}")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    problem = check_args(args)
    if problem:
        return fail(problem)
    return predict(args) if args.command == "predict" else fit(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

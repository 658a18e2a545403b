"""The command line's tables: read a CSV of series on one time column, write forecasts as CSV.

Input (:func:`read_table`): a CSV (``.tsv``: tab-separated; ``.txt``: the delimiter is sniffed) with a
header row. The time column is ``time_col`` or the first column; it is read as dates
(``pandas.to_datetime``) or, when every cell is a number, as numbers (years, steps). Every other column
(or the ``value_cols`` asked for) is one series; an empty cell (or ``NA``, ``NaN``, ``null`` ...) is a missing
value, kept as NaN. Rows are sorted by time; the times must be unique and regularly spaced (dates: pandas can
infer their frequency; numbers: one constant step), so a missing observation is an empty cell on its row,
never a missing row. A series needs at least :data:`MIN_OBSERVED` observed values. Every problem is one
:class:`shared.files.InputError` line naming the file (and the column, the cell and its line).

Output (:func:`write_forecasts`), written atomically (:func:`shared.files.atomic_write`):

* the forecasts: one row per future time step and series, columns ``time``, ``series`` (only when there is more
  than one series), ``mean``, ``q0.1`` ... ``q0.9`` (the levels as :meth:`.baselines.Forecast.frame` names them);
* the sample paths (optional): a *long* CSV, one row per time step, series and path: ``time``, ``series``
  (only when there is more than one), ``sample`` (0 .. N-1), ``value``.

Numbers are written with 10 significant digits.
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from shared.files import InputError, atomic_write

from .baselines import Forecast

#: the fewest observed values a series may have
MIN_OBSERVED = 8
#: how numbers are written
FLOAT_FORMAT = "%.10g"


def _line(position: int) -> int:
    """The file line of data row ``position`` (0-based; line 1 is the header)."""
    return int(position) + 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_csv(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    options = {"sep": "\t"} if suffix == ".tsv" else {"sep": None, "engine": "python"} if suffix == ".txt" else {}
    try:
        frame = pd.read_csv(path, dtype=str, index_col=False, skipinitialspace=True, encoding="utf-8-sig", **options)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file (expected a header row and data rows)") from None
    except (pd.errors.ParserError, csv.Error, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: cannot read it as CSV ({_one_line(err)})") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read it ({err.strerror or err})") from None
    return frame


def _compact_dates(text: pd.Series) -> bool:
    """Whether every cell is a date written ``YYYYMMDD`` (20240131), rather than a plain number."""
    if not text.str.fullmatch(r"(19|20|21)\d{6}").all():
        return False
    return bool(pd.to_datetime(text, format="%Y%m%d", errors="coerce").notna().all())


def _parse_times(path: Path, name: str, cells: pd.Series) -> pd.Index:
    """Dates, or numbers when every cell is a number; InputError naming the first bad cell."""
    text = cells.astype("string").str.strip()
    empty = text.isna() | (text == "")
    if empty.any():
        raise InputError(f"{path}: the time column '{name}' has an empty cell (line {_line(np.flatnonzero(empty)[0])})")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and _compact_dates(text):
        return pd.DatetimeIndex(pd.to_datetime(text, format="%Y%m%d"), name=name)
    if pd.notna(numbers.iloc[0]) and numbers.isna().any():     # numbers, but not all: name the first other cell
        bad = int(np.flatnonzero(numbers.isna())[0])
        raise InputError(f"{path}: cannot parse the time column '{name}' as numbers: {text.iloc[bad]!r} "
                         f"(line {_line(bad)})")
    if numbers.notna().all():
        values = numbers.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            bad = int(np.flatnonzero(~np.isfinite(values))[0])
            raise InputError(f"{path}: the time column '{name}' has a non-finite time {text.iloc[bad]!r} "
                             f"(line {_line(bad)})")
        if np.all(values == np.round(values)) and np.abs(values).max() < 2 ** 53:
            return pd.Index(values.astype(np.int64), name=name)
        return pd.Index(values, name=name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")           # "could not infer format" falls back to dateutil: fine
        try:
            times = pd.to_datetime(text, errors="coerce")
        except (ValueError, TypeError, OverflowError) as err:
            raise InputError(f"{path}: cannot parse the time column '{name}' as dates ({_one_line(err)})") from None
    if times.isna().any():
        bad = int(np.flatnonzero(times.isna())[0])
        raise InputError(f"{path}: cannot parse the time column '{name}' as dates or numbers: "
                         f"{text.iloc[bad]!r} (line {_line(bad)})")
    return pd.DatetimeIndex(times, name=name)


def _check_regular(path: Path, name: str, index: pd.Index) -> Optional[str]:
    """The inferred pandas frequency of a sorted, unique DatetimeIndex (None for numbers); InputError if irregular."""
    if len(index) < 3:
        return None                              # too short anyway: the history check says so
    if isinstance(index, pd.DatetimeIndex):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # pandas 4 will return an offset: both are handled
            freq = pd.infer_freq(index)
        freq = getattr(freq, "freqstr", freq)
        if freq is None:
            raise InputError(f"{path}: the times in '{name}' are not regularly spaced (pandas infers no frequency "
                             f"from {index[0]}, {index[1]}, {index[2]}, ...); put missing values as empty cells "
                             "on a regular grid")
        return freq
    steps = np.diff(index.to_numpy(dtype=np.float64))
    same = np.isclose(steps, steps[0], rtol=1e-9, atol=0)
    if not same.all():
        k = int(np.flatnonzero(~same)[0])
        raise InputError(f"{path}: the times in '{name}' are not regularly spaced: step {steps[k]:g} from "
                         f"{index[k]} to {index[k + 1]}, but {steps[0]:g} before; put missing values as empty "
                         "cells on a regular grid")
    return None


def read_table(path: str | os.PathLike, time_col: Optional[str] = None,
               value_cols: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """The series of a CSV as a float DataFrame (module docstring): index = the parsed, sorted times (a
    ``DatetimeIndex`` with its frequency, or numbers), one column per series, NaN for missing values."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    frame = _read_csv(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if len(frame) == 0:
        raise InputError(f"{path}: no data rows below the header")
    if time_col is None:
        time_col = columns[0]
    elif time_col not in columns:
        raise InputError(f"{path}: no time column '{time_col}' (columns: {', '.join(columns)})")
    if value_cols is None:
        value_cols = [c for c in columns if c != time_col]
        if not value_cols:
            raise InputError(f"{path}: no value column besides the time column '{time_col}'")
    else:
        value_cols = [str(c) for c in value_cols]
        for c in value_cols:
            if c not in columns:
                raise InputError(f"{path}: no value column '{c}' (columns: {', '.join(columns)})")
            if c == time_col:
                raise InputError(f"{path}: '{c}' is the time column; it cannot also be a value column")
        repeated = [c for i, c in enumerate(value_cols) if c in value_cols[:i]]
        if repeated:
            raise InputError(f"{path}: value column '{repeated[0]}' is asked for twice")
        if not value_cols:
            raise InputError(f"{path}: no value column asked for")

    index = _parse_times(path, time_col, frame[time_col])
    order = np.argsort(index.to_numpy(), kind="stable")
    index, frame = index[order], frame.iloc[order]
    repeated = index.duplicated()
    if repeated.any():
        k = int(np.flatnonzero(repeated)[0])
        lines = sorted(_line(order[j]) for j in np.flatnonzero(index == index[k]))
        raise InputError(f"{path}: duplicated time {index[k]} in '{time_col}' "
                         f"(lines {', '.join(map(str, lines))})")
    freq = _check_regular(path, time_col, index)

    values = {}
    for c in value_cols:
        text = frame[c].astype("string").str.strip().replace("", pd.NA)
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        bad = text.notna().to_numpy(dtype=bool) & ~np.isfinite(numbers.to_numpy(dtype=np.float64))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InputError(f"{path}: column '{c}' has a non-numeric value {text.iloc[k]!r} "
                             f"(line {_line(order[k])})")
        observed = int(numbers.notna().sum())
        if observed < MIN_OBSERVED:
            raise InputError(f"{path}: series '{c}' has {observed} observed value(s); at least {MIN_OBSERVED} "
                             "are needed")
        values[c] = numbers.to_numpy(dtype=np.float64)
    table = pd.DataFrame(values, index=index, columns=value_cols)
    if freq is not None:
        table = table.asfreq(freq)               # a regular index with .freq: future_index continues it
    return table


def _long_frame(forecasts: Mapping[str, Forecast], part) -> pd.DataFrame:
    """``part(f) -> (frame, steps)`` of every forecast, with ``time`` (``f.index[steps]``) and, for more than one
    series, ``series`` in front, stacked."""
    pieces = []
    for name, f in forecasts.items():
        piece, steps = part(f)
        piece.insert(0, "time", np.asarray(f.index)[steps])
        if len(forecasts) > 1:
            piece.insert(1, "series", name)
        pieces.append(piece)
    return pd.concat(pieces, ignore_index=True)


def forecast_frame(forecasts: Mapping[str, Forecast]) -> pd.DataFrame:
    """One row per future step and series: ``time``, ``series`` (more than one series), ``mean``, ``q...``."""
    levels = {tuple(f.levels) for f in forecasts.values()}
    if len(levels) > 1:
        raise ValueError(f"the forecasts have different levels: {sorted(levels)}")
    return _long_frame(forecasts, lambda f: (f.frame().reset_index(drop=True), np.arange(len(f.index))))


def samples_frame(forecasts: Mapping[str, Forecast]) -> pd.DataFrame:
    """One row per future step, series (more than one series) and path: ``time``, ``series``, ``sample``, ``value``."""
    def part(f: Forecast):
        if f.samples is None:
            raise ValueError(f"the {f.method} forecast has no sample paths")
        s, h = f.samples.shape
        return (pd.DataFrame({"sample": np.tile(np.arange(s), h), "value": f.samples.T.ravel()}),
                np.repeat(np.arange(h), s))

    return _long_frame(forecasts, part)


def write_forecasts(forecasts: Mapping[str, Forecast], path: str | os.PathLike,
                    samples_path: Optional[str | os.PathLike] = None) -> None:
    """Write the forecasts (and, with ``samples_path``, their sample paths) as CSV, atomically: on any error
    neither file is written (module docstring for the columns)."""
    if not forecasts:
        raise ValueError("no forecasts to write")
    table = forecast_frame(forecasts)
    paths = samples_frame(forecasts) if samples_path is not None else None   # fails before anything is written
    if samples_path is not None and Path(samples_path).resolve() == Path(path).resolve():
        raise InputError(f"{samples_path}: the samples file cannot be the forecast file")

    def write(tmp: Path) -> None:
        table.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
        if paths is not None:                    # renamed into place just before the forecasts are
            atomic_write(samples_path, lambda tmp2: paths.to_csv(tmp2, index=False, float_format=FLOAT_FORMAT))

    atomic_write(path, write)

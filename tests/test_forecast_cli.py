"""science.forecast's command line: the input table (every rule and error message), the output CSVs (columns,
rows, atomic writes), and ``python -m science.forecast`` end to end with a baseline and with a tiny model."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from science.forecast import series, table
from science.forecast.baselines import Forecast, future_index
from science.forecast.cli import main
from science.forecast.metrics import LEVELS
from shared.files import InputError

ROOT = Path(__file__).resolve().parents[1]
QUANTILE_COLUMNS = [f"q{q:g}" for q in LEVELS]


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """Every test of this file on one torch thread (conftest's one_torch_thread)."""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def monthly_csv(path: Path, n: int = 30, columns=("a", "b")) -> Path:
    times = pd.date_range("2020-01-01", periods=n, freq="MS")
    rows = ["time," + ",".join(columns)]
    rows += [f"{t:%Y-%m-%d}," + ",".join(f"{(k + 1) * 10 + i % 12:.1f}" for k in range(len(columns)))
             for i, t in enumerate(times)]
    return write(path, "\n".join(rows) + "\n")


def co2_csv(path: Path, n: int = 48, nan_at=None) -> Path:
    s = series.load("co2").tail(n)
    frame = pd.DataFrame({"co2": s.to_numpy(), "co2x2": 2 * s.to_numpy()}, index=s.index.rename("month"))
    if nan_at is not None:
        frame.iloc[nan_at, 1] = np.nan
    frame.to_csv(path)
    return path


# ----------------------------------------------------------------------------- reading
def test_reads_dates_sorted_with_frequency_and_nans(tmp_path):
    lines = ["time,a,b"] + [f"2021-{m:02d}-01,{m},{'' if m == 5 else m * 2}" for m in range(12, 0, -1)]
    t = table.read_table(write(tmp_path / "in.csv", "\n".join(lines)))
    assert isinstance(t.index, pd.DatetimeIndex) and t.index.freqstr == "MS" and t.index.name == "time"
    assert t.index.is_monotonic_increasing and list(t.columns) == ["a", "b"]
    assert t.dtypes.tolist() == [np.float64, np.float64]
    np.testing.assert_array_equal(t["a"], np.arange(1, 13))
    assert np.isnan(t["b"].iloc[4]) and t["b"].isna().sum() == 1
    assert series.infer_season(t.index) == 12
    assert future_index(t.index, 2).tolist() == [pd.Timestamp("2022-01-01"), pd.Timestamp("2022-02-01")]


def test_reads_numbers_columns_and_missing_markers(tmp_path):
    lines = ["x,year,v,w"] + [f"{i},{1990 + i},{i * 1.5},{'NA' if i == 3 else i}" for i in range(10)]
    path = write(tmp_path / "in.csv", "\n".join(lines))
    t = table.read_table(path, time_col="year", value_cols=["w"])
    assert t.index.dtype == np.int64 and t.index[0] == 1990 and list(t.columns) == ["w"]
    assert np.isnan(t["w"].iloc[3])
    assert series.infer_season(t.index) == 1
    assert future_index(t.index, 3).tolist() == [2000, 2001, 2002]
    t = table.read_table(path)                                   # first column as time, every other as a series
    assert list(t.columns) == ["year", "v", "w"]
    steps = write(tmp_path / "f.csv", "t,v\n" + "\n".join(f"{i * 0.1:.1f},{i}" for i in range(10)))
    assert future_index(table.read_table(steps).index, 2).to_numpy() == pytest.approx([1.0, 1.1])


def test_reads_compact_dates(tmp_path):
    lines = ["day,v"] + [f"202401{d:02d},{d}" for d in range(1, 11)]
    t = table.read_table(write(tmp_path / "in.csv", "\n".join(lines)))
    assert t.index.freqstr == "D" and t.index[0] == pd.Timestamp("2024-01-01")


def test_reads_tsv_and_sniffed_txt(tmp_path):
    rows = [f"2020-01-{d:02d}\t{d}" for d in range(1, 11)]
    t = table.read_table(write(tmp_path / "in.tsv", "day\tv\n" + "\n".join(rows)))
    assert t.index.freqstr == "D" and series.infer_season(t.index) == 7
    t = table.read_table(write(tmp_path / "in.txt", "day;v\n" + "\n".join(r.replace("\t", ";") for r in rows)))
    assert t["v"].tolist() == list(range(1, 11))


REGULAR = "\n".join(f"{i},{i}" for i in range(10))


@pytest.mark.parametrize("text,kwargs,message", [
    ("", {}, "empty file"),
    ("t,a\n", {}, "no data rows"),
    ("t\n1\n2\n", {}, "no value column besides the time column 't'"),
    ("t,a\n" + REGULAR, {"time_col": "when"}, "no time column 'when' (columns: t, a)"),
    ("t,a\n" + REGULAR, {"value_cols": ["b"]}, "no value column 'b' (columns: t, a)"),
    ("t,a\n" + REGULAR, {"value_cols": ["t"]}, "'t' is the time column"),
    ("t,a\n" + REGULAR + "\nmonday,3", {}, "cannot parse the time column 't' as numbers: 'monday' (line 12)"),
    ("t,a\n" + "\n".join(f"2020-01-{d:02d},1" for d in range(1, 10)) + "\nlater,3", {},
     "cannot parse the time column 't' as dates or numbers: 'later' (line 11)"),
    ("t,a\n" + REGULAR + "\n,3", {}, "the time column 't' has an empty cell (line 12)"),
    ("t,a\n" + REGULAR + "\n4,3", {}, "duplicated time 4 in 't' (lines 6, 12)"),
    ("t,a\n" + REGULAR + "\n11,3", {}, "not regularly spaced: step 2 from 9 to 11, but 1 before"),
    ("t,a\n" + "\n".join(f"2020-01-{d:02d},1" for d in (1, 2, 3, 5, 6, 7, 8, 9, 10)), {}, "not regularly spaced"),
    ("t,a\n" + REGULAR.replace("5,5", "5,five"), {}, "column 'a' has a non-numeric value 'five' (line 7)"),
    ("t,a\n" + REGULAR.replace("5,5", "5,inf"), {}, "column 'a' has a non-numeric value 'inf' (line 7)"),
    ("t,a\n" + "\n".join(f"{i},{'' if i < 3 else i}" for i in range(10)), {},
     f"series 'a' has 7 observed value(s); at least {table.MIN_OBSERVED} are needed"),
    ('t,a\n1,"2\n', {}, "cannot read it as CSV"),
])
def test_input_errors_are_one_line_naming_the_file(tmp_path, text, kwargs, message):
    path = write(tmp_path / "in.csv", text)
    with pytest.raises(InputError) as err:
        table.read_table(path, **kwargs)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        table.read_table(tmp_path / "nope.csv")


def test_minimum_history_is_a_constant(tmp_path):
    assert table.MIN_OBSERVED == 8
    lines = ["t,a"] + [f"{i},{i}" for i in range(table.MIN_OBSERVED)]
    assert len(table.read_table(write(tmp_path / "in.csv", "\n".join(lines)))) == table.MIN_OBSERVED


# ----------------------------------------------------------------------------- writing
def forecast(index, seed: int, samples: int = 0) -> Forecast:
    rng = np.random.default_rng(seed)
    paths = rng.normal(size=(max(samples, 50), len(index)))
    return Forecast("test", LEVELS, np.quantile(paths, LEVELS, axis=0), paths.mean(axis=0), index,
                    paths[:samples] if samples else None)


def test_writes_one_row_per_step_and_series(tmp_path):
    index = pd.date_range("2021-01-01", periods=3, freq="MS")
    out = tmp_path / "out.csv"
    table.write_forecasts({"a": forecast(index, 0)}, out)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "mean", *QUANTILE_COLUMNS]
    assert frame["time"].tolist() == ["2021-01-01", "2021-02-01", "2021-03-01"]

    fa, fb = forecast(index, 0, samples=4), forecast(index, 1, samples=4)
    table.write_forecasts({"a": fa, "b": fb}, out, tmp_path / "paths.csv")
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "series", "mean", *QUANTILE_COLUMNS] and len(frame) == 6
    assert frame["series"].tolist() == ["a"] * 3 + ["b"] * 3
    np.testing.assert_allclose(frame[QUANTILE_COLUMNS].to_numpy()[3:], fb.quantiles.T, rtol=1e-9)
    paths = pd.read_csv(tmp_path / "paths.csv")
    assert list(paths.columns) == ["time", "series", "sample", "value"] and len(paths) == 2 * 3 * 4
    b = paths[paths.series == "b"].pivot(index="sample", columns="time", values="value")
    np.testing.assert_allclose(b.to_numpy(), fb.samples, rtol=1e-9)


def test_writing_is_atomic(tmp_path):
    index = pd.RangeIndex(3)
    out, paths = tmp_path / "out.csv", tmp_path / "paths.csv"
    with pytest.raises(ValueError, match="no sample paths"):      # a forecast without paths: nothing written
        table.write_forecasts({"a": forecast(index, 0, samples=2), "b": forecast(index, 1)}, out, paths)
    blocker = write(tmp_path / "blocker", "a file, not a folder")
    with pytest.raises(InputError, match="cannot write in this folder"):   # the samples file cannot be written
        table.write_forecasts({"a": forecast(index, 0, samples=2)}, out, blocker / "paths.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_writing_fails_in_the_middle_leaves_nothing(tmp_path, monkeypatch):
    out, paths = tmp_path / "out.csv", tmp_path / "paths.csv"
    real = pd.DataFrame.to_csv

    def broken(self, path, *args, **kwargs):
        if "sample" in self.columns:
            raise OSError("disk full")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        table.write_forecasts({"a": forecast(pd.RangeIndex(3), 0, samples=2)}, out, paths)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- command line
def python(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "science.forecast", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    return proc, time.perf_counter() - start


def test_help_answers_at_once():
    for _ in range(2):                                 # best of two: a busy machine should not fail it
        proc, seconds = python("--help")
        if seconds < 2:
            break
    assert proc.returncode == 0 and "--horizon" in proc.stdout and "--fit-seconds" in proc.stdout
    assert seconds < 2, f"--help took {seconds:.2f} s"


@pytest.mark.parametrize("args,message", [
    (["--horizon", "0"], "--horizon must be >= 1, got 0"),
    (["--horizon", "3", "--samples", "0"], "--samples must be >= 1, got 0"),
    (["--horizon", "3", "--season", "0"], "--season must be >= 1, got 0"),
    (["--horizon", "3", "--steps", "0"], "--steps must be >= 1, got 0"),
    (["--horizon", "3", "--method", "ets", "--fit-seconds", "30"], "--fit-seconds applies to --method resshift only"),
    (["--horizon", "3", "--fit-seconds", "-1"], "--fit-seconds must be >= 0, got -1.0"),
    (["--horizon", "3", "--backtests", "-1"], "--backtests must be >= 0, got -1"),
    (["--horizon", "3", "--method", "ets", "--steps", "2"], "--steps applies to --method resshift only"),
    (["--horizon", "3", "--device", "gpu"], "--device gpu: not a device"),
])
def test_argument_errors(tmp_path, capsys, args, message):
    assert main([str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_output_checks(tmp_path, capsys):
    src = monthly_csv(tmp_path / "in.csv")
    for output, extra, message in [
        (tmp_path / "out.json", [], "the output must be a .csv file"),
        (src, [], "the output would overwrite the input"),
        (tmp_path / "out.csv", ["--samples-out", str(src)], "--samples-out must differ"),
        (tmp_path / "out.csv", ["--samples-out", str(tmp_path / "p.txt")], "--samples-out must be a .csv"),
    ]:
        assert main([str(src), "-o", str(output), "--horizon", "2", "--method", "seasonal-naive", *extra]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_argument_error_exits_2_with_one_line(tmp_path):
    proc, _ = python(str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--horizon", "3", "--backtests", "-2")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == ["error: --backtests must be >= 0, got -2"]
    proc, _ = python(str(tmp_path / "in.csv"), "-o", str(tmp_path / "o.csv"), "--horizon", "3")
    assert proc.returncode == 2 and proc.stderr == f"error: {tmp_path / 'in.csv'}: no such file\n"


def test_baseline_end_to_end(tmp_path):
    src = co2_csv(tmp_path / "co2.csv", nan_at=10)
    out, paths = tmp_path / "out.csv", tmp_path / "paths.csv"
    proc, _ = python(str(src), "-o", str(out), "--horizon", "6", "--method", "seasonal-naive", "--samples", "7",
                     "--samples-out", str(paths), "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "2 series x 6 steps" in proc.stdout and "seasonal-naive, season 12" in proc.stdout
    assert "co2x2: 1 missing values of the history filled" in proc.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "series", "mean", *QUANTILE_COLUMNS] and len(frame) == 12
    assert frame["time"].iloc[0] == "2002-01-01" and frame["time"].iloc[5] == "2002-06-01"
    s = series.load("co2")
    np.testing.assert_allclose(frame["q0.5"].iloc[:6], s.iloc[-12:-6], rtol=1e-9)   # the last season repeated
    assert len(pd.read_csv(paths)) == 2 * 6 * 7


@pytest.mark.parametrize("method", ["ets", "arima"])
def test_statistical_methods_in_process(tmp_path, capsys, method):
    src = co2_csv(tmp_path / "co2.csv")
    out = tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "--horizon", "4", "--method", method, "--value-col", "co2"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "mean", *QUANTILE_COLUMNS] and len(frame) == 4
    assert np.all(np.diff(frame[QUANTILE_COLUMNS].to_numpy(), axis=1) >= 0)
    assert f"1 series x 4 steps -> {out}: {method}" in capsys.readouterr().out


def test_input_error_leaves_no_output(tmp_path, capsys):
    src = write(tmp_path / "in.csv", "t,a\n" + "\n".join(f"{i},{i}" for i in range(5)))
    out = tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "--horizon", "2", "--method", "seasonal-naive"]) == 2
    assert capsys.readouterr().err == f"error: {src}: series 'a' has 5 observed value(s); at least 8 are needed\n"
    # a series the method cannot forecast (seasonal naive with a season longer than the history)
    src = monthly_csv(tmp_path / "in.csv", n=10)
    assert main([str(src), "-o", str(out), "--horizon", "2", "--method", "seasonal-naive", "--season", "12",
                 "--samples-out", str(tmp_path / "p.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {src}: series 'a': seasonal naive with season 12") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_resshift_end_to_end(tmp_path, tiny_forecast_weights):
    src = co2_csv(tmp_path / "co2.csv", nan_at=-3)
    out, paths = tmp_path / "out.csv", tmp_path / "paths.csv"
    args = [str(src), "-o", str(out), "--horizon", "5", "--samples", "6", "--samples-out", str(paths),
            "--weights", str(tiny_forecast_weights), "--device", "cpu", "--seed", "1"]
    proc, _ = python(*args)
    assert proc.returncode == 0, proc.stderr
    # per series: 4 evaluations for the forecast and 4 for each of the 3 backtests of the spread calibration
    assert "2 series x 5 steps" in proc.stdout and "resshift, season 12, 32 network evaluations" in proc.stdout
    assert "co2x2: 1 missing values of the context imputed by the model" in proc.stderr
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["time", "series", "mean", *QUANTILE_COLUMNS] and len(frame) == 10
    assert np.isfinite(frame[["mean", *QUANTILE_COLUMNS]].to_numpy()).all()
    assert np.all(np.diff(frame[QUANTILE_COLUMNS].to_numpy(), axis=1) >= -1e-6)
    samples = pd.read_csv(paths)
    assert len(samples) == 2 * 5 * 6 and sorted(samples["sample"].unique()) == list(range(6))
    # same seed, same forecast (in process this time: the model is already imported by the fixture)
    again = tmp_path / "again.csv"
    assert main([*args[:2], str(again), *args[3:7], *args[9:], "--quiet"]) == 0   # without --samples-out
    pd.testing.assert_frame_equal(pd.read_csv(again), frame, check_exact=False, rtol=1e-5)


def test_resshift_missing_weights(tmp_path, capsys):
    src = monthly_csv(tmp_path / "in.csv")
    assert main([str(src), "-o", str(tmp_path / "out.csv"), "--horizon", "2", "--weights", str(tmp_path),
                 "--device", "cpu"]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: no forecasting model there (model.json missing)\n"


def test_resshift_fit_seconds_fine_tunes_each_series(tmp_path, tiny_forecast_weights):
    src = co2_csv(tmp_path / "co2.csv")
    base = [str(src), "--horizon", "4", "--samples", "8", "--weights", str(tiny_forecast_weights), "--device", "cpu",
            "--quiet", "--backtests", "0"]
    assert main([base[0], "-o", str(tmp_path / "zero.csv"), *base[1:]]) == 0
    assert main([base[0], "-o", str(tmp_path / "fit.csv"), *base[1:], "--fit-seconds", "0.3"]) == 0
    zero, fit = pd.read_csv(tmp_path / "zero.csv"), pd.read_csv(tmp_path / "fit.csv")
    assert list(fit.columns) == list(zero.columns) and len(fit) == len(zero) == 8
    assert np.isfinite(fit[QUANTILE_COLUMNS].to_numpy()).all()
    assert not np.allclose(fit["mean"], zero["mean"])          # the fine-tuned copies forecast differently

"""Command line: ``python -m science.forecast INPUT.csv -o OUT.csv --horizon H``.

    python -m science.forecast sales.csv -o forecast.csv --horizon 12
    python -m science.forecast sales.csv -o forecast.csv --horizon 12 --value-col north --value-col south
    python -m science.forecast sales.csv -o forecast.csv --horizon 12 --method ets --samples-out paths.csv
    python -m science.forecast sales.csv -o forecast.csv --horizon 12 --weights my_model/ --steps 2
    python -m science.forecast sales.csv -o forecast.csv --horizon 12 --fit-seconds 30

The input is a CSV with a time column (the first one unless ``--time-col``: dates, or numbers) and one column
per series (all the others unless ``--value-col``); an empty cell is a missing value (:mod:`.table` has the
rules). Every series is forecast ``--horizon`` steps ahead: by the residual-shift diffusion model
(``--method resshift``, the default: it imputes missing values of the history itself), or by a statistical
baseline (``seasonal-naive``, ``ets``, ``arima``: missing values are interpolated first). The diffusion
model's spread is calibrated on each history's own last ``--backtests`` horizons; ``--fit-seconds`` first
fine-tunes a copy of it on each series' history. The output CSV has
one row per future step and series: ``time``, ``series`` (several series only), ``mean``, ``q0.1`` ...
``q0.9``; ``--samples-out`` adds the ``--samples`` sample paths as a long CSV (``time, series, sample,
value``). Both are written atomically, only when every series succeeded. The season (of the seasonal naive
base forecast and the baselines) comes from the dates' frequency (monthly 12, quarterly 4, weekly 52, daily 7,
hourly 24, else 1; 1 for numeric times) unless ``--season``. One ``--seed`` seeds the whole run (the series
draw in turn from one random stream). Heavy libraries load only after the arguments are checked.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional

from shared.cli import add_common_options, fail, model_options, preflight, progress

METHODS = ("resshift", "seasonal-naive", "ets", "arima")
INPUT_KINDS = (".csv", ".tsv", ".txt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m science.forecast",
                                description="Probabilistic forecasts (mean and quantiles 0.1 ... 0.9) of the series "
                                            "of a CSV table, by residual-shift diffusion or a statistical baseline.")
    p.add_argument("input", help="input table: .csv (.tsv, .txt) with a time column and one column per series")
    p.add_argument("-o", "--output", required=True, help="output .csv: time, series, mean, q0.1 ... q0.9")
    p.add_argument("--horizon", type=int, required=True, help="steps to forecast")
    p.add_argument("--samples", type=int, default=100, help="sample paths per series (default 100)")
    p.add_argument("--season", type=int, default=None,
                   help="season length (default: from the dates' frequency, 1 for numeric times)")
    p.add_argument("--time-col", default=None, help="the time column (default: the first column)")
    p.add_argument("--value-col", action="append", default=None, metavar="COLUMN",
                   help="a series to forecast (repeatable; default: every column but the time)")
    p.add_argument("--method", choices=METHODS, default="resshift", help="forecaster (default resshift)")
    p.add_argument("--steps", type=int, default=None, help="resshift: sampler steps (default: the model's)")
    p.add_argument("--fit-seconds", type=float, default=0.0,
                   help="resshift: fine-tune a copy of the model on each series' own history for this many "
                        "seconds before forecasting it (default 0: the pretrained model zero-shot)")
    p.add_argument("--backtests", type=int, default=3,
                   help="resshift: calibrate the spread on this many of the history's last horizons (default 3; "
                        "0: the raw sample paths)")
    p.add_argument("--samples-out", default=None, help="also write the sample paths to this .csv (long format)")
    add_common_options(p, seed_help="random seed of the sample paths")
    return p


def _same_file(a: str, b: str) -> bool:
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_args(args) -> Optional[str]:
    """The first problem with the arguments, or None (no file is read, nothing heavy imported)."""
    if args.horizon < 1:
        return f"--horizon must be >= 1, got {args.horizon}"
    if args.samples < 1:
        return f"--samples must be >= 1, got {args.samples}"
    if args.season is not None and args.season < 1:
        return f"--season must be >= 1, got {args.season}"
    if args.steps is not None and args.steps < 1:
        return f"--steps must be >= 1, got {args.steps}"
    if not args.fit_seconds >= 0:
        return f"--fit-seconds must be >= 0, got {args.fit_seconds}"
    if args.backtests < 0:
        return f"--backtests must be >= 0, got {args.backtests}"
    if args.method != "resshift":
        if args.fit_seconds > 0:
            return f"--fit-seconds applies to --method resshift only, not {args.method}"
        if args.steps is not None:
            return f"--steps applies to --method resshift only, not {args.method}"
        if args.weights is not None:
            return f"--weights applies to --method resshift only, not {args.method}"
    if Path(args.input).suffix.lower() not in INPUT_KINDS:
        return f"{args.input}: the input must be a {', '.join(INPUT_KINDS)} file"
    if Path(args.output).suffix.lower() != ".csv":
        return f"{args.output}: the output must be a .csv file"
    if _same_file(args.input, args.output):
        return f"{args.output}: the output would overwrite the input; choose another output path"
    if args.samples_out is not None:
        if Path(args.samples_out).suffix.lower() != ".csv":
            return f"{args.samples_out}: --samples-out must be a .csv file"
        if _same_file(args.samples_out, args.input) or _same_file(args.samples_out, args.output):
            return f"{args.samples_out}: --samples-out must differ from the input and the output"
    return None


def load_forecaster(args):
    """``(forecast, evaluations, label)``: ``forecast(history, season) -> Forecast`` for ``args.method``, a counter
    of network evaluations (``lambda: int``) and the method's name for the summary (the model's own for resshift
    weights that hold another kind of model)."""
    if args.method == "resshift":
        import torch

        from .forecaster import Forecaster

        model = Forecaster.from_pretrained(args.weights, **model_options(args))
        generator = torch.Generator().manual_seed(args.seed)

        def forecast(history, season):
            tuned = model
            if args.fit_seconds > 0:                 # a copy adapted to this series; the model stays as loaded
                tuned = model.fine_tune(history, args.horizon, seconds=args.fit_seconds, season=season, seed=args.seed)
            out = tuned.forecast(history, args.horizon, season=season, samples=args.samples,
                                 num_inference_steps=args.steps, generator=generator,
                                 keep_samples=args.samples_out is not None, backtests=args.backtests)
            if tuned is not model:
                model.last_run.network_evaluations += tuned.last_run.network_evaluations
            return out

        return forecast, lambda: model.last_run.network_evaluations, getattr(model, "method", args.method)

    import numpy as np

    from . import baselines

    function = {"seasonal-naive": baselines.seasonal_naive, "ets": baselines.ets, "arima": baselines.arima}[args.method]
    rng = np.random.default_rng(args.seed)

    def forecast(history, season):
        return function(history, args.horizon, season, samples=args.samples, seed=rng)

    return forecast, lambda: 0, args.method


def run(args) -> int:
    from shared.files import InputError

    output = Path(args.output)
    code = preflight(args, check_args(args), output)
    if code is not None:
        return code
    import dataclasses

    from shared.files import device_from_string, remove_stale_temporaries

    from .baselines import future_index
    from .series import infer_season
    from .table import read_table, write_forecasts

    try:
        table = read_table(args.input, args.time_col, args.value_col)
        season = args.season if args.season is not None else infer_season(table.index)
        if args.method == "resshift":
            device_from_string(args.device)          # is this device here?
        forecast, evaluations, label = load_forecaster(args)
    except (InputError, ValueError) as err:
        return fail(str(err))
    future = future_index(table.index, args.horizon)
    forecasts, notes = {}, []
    start = time.perf_counter()
    bar = progress(len(table.columns), "series", args.quiet)
    try:
        for name in table.columns:
            bar.set_description(str(name))
            history = table[name]
            history = history.loc[history.first_valid_index():]   # a series that starts late: not a gap
            used = season
            if args.season is None and args.method == "seasonal-naive" and len(history) <= season:
                used = 1                             # an inferred season longer than the history: none
                notes.append(f"{name}: history of {len(history)} points is not longer than the season {season}; "
                             "seasonal naive with season 1")
            try:
                result = forecast(history, used)
            except (InputError, ValueError, RuntimeError) as err:
                bar.close()                          # before the error line, so that it stands alone
                return fail(f"{args.input}: series '{name}': {err}")
            forecasts[str(name)] = dataclasses.replace(result, index=future)
            notes += [f"{name}: {note}" for note in result.notes]
            bar.update(1)
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    try:
        remove_stale_temporaries([p for p in (args.output, args.samples_out) if p is not None])
        write_forecasts(forecasts, output, args.samples_out)
    except (InputError, ValueError) as err:
        return fail(str(err))
    if not args.quiet:
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        extra = f" (+ {args.samples} sample paths -> {args.samples_out})" if args.samples_out else ""
        print(f"{len(forecasts)} series x {args.horizon} steps -> {output}{extra}: {label}, season {season}, "
              f"{evaluations()} network evaluations, {seconds:.2f} s")
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    return run(build_parser().parse_args(argv))

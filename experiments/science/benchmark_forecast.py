"""Probabilistic forecasting benchmark (issue 16): every method on the validation windows of every series, in one run.

Series: the registry of :mod:`science.forecast.series` (18 real series that install offline and 3 synthetic
ones), each split by time into its own rolling validation windows (M4 horizons: monthly 18, quarterly 8,
yearly 6; up to 4 windows, never seen in training). Methods, all at the quantile levels 0.1 ... 0.9:
seasonal naive (seasonal random walk spread), statsmodels ETS (damped additive trend, additive season) and
ARIMA (:mod:`science.forecast.baselines`); the residual-shift model (``--weights``) at ``--steps`` sampler
steps with ``--samples`` paths (quantiles read off the paths, their spread calibrated on ``--backtests`` of the
context's own last horizons, :mod:`science.forecast.calibration`, and once more without it); the self-guided unconditional model (TSDiff
style, ``--tsdiff``: DDIM with quantile self-guidance, ``--tsdiff-steps`` steps, one forward and one backward
each; uncalibrated, as published); and the residual-shift model fine-tuned on each window's own context for ``--fit-seconds`` before
sampling (:meth:`science.forecast.Forecaster.fine_tune`, the CLI's ``--fit-seconds``; its seconds include the
fine-tuning).

Metrics (GluonTS definitions, :mod:`science.forecast.metrics`): the weighted quantile loss wQL of each
series over its windows (the "CRPS" TSDiff reports), MASE, 80 % interval coverage, seconds per series.
Summary per method: geometric mean over series of wQL relative to ETS and to seasonal naive, mean MASE,
coverage over all windows. Targets (issue 16): geometric-mean relative wQL <= 1.0 vs ETS and <= 0.85 vs
seasonal naive, coverage within 0.7-0.9. Writes ``--out``.json and .png (fan charts of the last window of
six series).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..report import run_script, save_figure, script_parser

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "science" / "forecast" / "weights" / "resshift"
DEFAULT_TSDIFF = Path(__file__).resolve().parent / "baselines" / "forecast_tsdiff"
FAN_SERIES = ("co2", "sunspots", "macro_realgdp", "elec_equip", "soi_darwin", "synthetic_trend_season")


def baseline_methods() -> dict:
    """``name -> forecast(context, horizon, season, seed)`` of the statistical baselines."""
    from science.forecast import baselines

    return {name: (lambda ctx, h, m, seed, fn=fn: fn(ctx, h, m))
            for name, fn in (("seasonal naive", baselines.seasonal_naive), ("ETS", baselines.ets),
                             ("ARIMA", baselines.arima))}


def model_methods(args) -> dict:
    """``name -> forecast(context, horizon, season, seed)`` of the diffusion models asked for."""
    from science.forecast.forecaster import Forecaster

    out = {}
    if args.weights:
        fc = Forecaster.from_pretrained(args.weights, device="cpu")
        for k in args.steps:
            out[f"ResShift {k} step{'s' if k > 1 else ''}"] = (
                lambda ctx, h, m, seed, k=k: fc.forecast(ctx, h, m, samples=args.samples, num_inference_steps=k,
                                                        generator=torch.Generator().manual_seed(seed),
                                                        backtests=args.backtests))
        k = max(args.steps)
        if args.backtests:                                  # the same without the spread calibration
            out[f"ResShift {k} step{'s' if k > 1 else ''}, uncalibrated"] = (
                lambda ctx, h, m, seed, k=k: fc.forecast(ctx, h, m, samples=args.samples, num_inference_steps=k,
                                                        generator=torch.Generator().manual_seed(seed), backtests=0))
        for budget in args.fit_seconds:                     # per-series fine-tuning on the context, then sampling
            out[f"ResShift {k} step{'s' if k > 1 else ''}, fit {budget:g} s"] = (
                lambda ctx, h, m, seed, k=k, budget=budget: fc.fine_tune(ctx, h, seconds=budget, season=m, seed=seed)
                .forecast(ctx, h, m, samples=args.samples, num_inference_steps=k,
                          generator=torch.Generator().manual_seed(seed), backtests=args.backtests))
    if args.tsdiff:
        ts = Forecaster.from_pretrained(args.tsdiff, device="cpu")
        out[f"TSDiff self-guided, {args.tsdiff_steps} steps"] = (
            lambda ctx, h, m, seed: ts.forecast(ctx, h, m, samples=args.samples, num_inference_steps=args.tsdiff_steps,
                                                generator=torch.Generator().manual_seed(seed), backtests=0))
    return out


def evaluate(methods: dict, names: list[str]) -> tuple[list[dict], dict]:
    """Per series and method: wQL over the windows (concatenated), mean MASE, coverage, seconds; and the
    last window's forecasts of the fan-chart series."""
    from science.forecast import metrics
    from science.forecast.series import SERIES, split_series

    rows, fans = [], {}
    for name in names:
        info, s = SERIES[name], split_series(name)
        for method, forecast in methods.items():
            start, ys, qs, mases, covered = time.perf_counter(), [], [], [], []
            for i, w in enumerate(s.windows):
                f = forecast(w.context, info.horizon, info.season, i)
                y = w.target.to_numpy(np.float64)
                ys.append(y)
                qs.append(f.quantiles)
                mases.append(metrics.mase(y, f.quantile(0.5), w.context.to_numpy(np.float64), info.season))
                covered.append(metrics.interval_coverage(y, f.quantiles))
                if name in FAN_SERIES and i == len(s.windows) - 1:
                    tail = w.context.iloc[-3 * info.horizon:]
                    fans.setdefault(name, {"history": [tail.index.astype(str).tolist(), tail.tolist()],
                                           "target": [w.target.index.astype(str).tolist(), y.tolist()]})
                    fans[name][method] = {"q10": f.quantile(0.1).tolist(), "q50": f.quantile(0.5).tolist(),
                                          "q90": f.quantile(0.9).tolist()}
            wql = metrics.mean_weighted_quantile_loss(np.concatenate(ys), np.concatenate(qs, axis=1))
            rows.append({"series": name, "method": method, "windows": len(s.windows), "wql": wql,
                         "mase": float(np.mean(mases)), "coverage80": float(np.mean(covered)),
                         "seconds": (time.perf_counter() - start) / len(s.windows)})
            print(f"{name:24s} {method:18s} wQL {wql:.4f}  MASE {rows[-1]['mase']:.3f}  cov80 "
                  f"{rows[-1]['coverage80']:.2f}  {rows[-1]['seconds']:.2f} s/window", flush=True)
    return rows, fans


def summarise(rows: list[dict], methods: list[str], real: set[str]) -> list[dict]:
    """Per method: geometric means of wQL relative to ETS and to seasonal naive (all series, and real only),
    mean MASE, window-weighted coverage, mean seconds per window."""
    by = {(r["series"], r["method"]): r for r in rows}
    series = sorted({r["series"] for r in rows})
    out = []
    for m in methods:
        def gmean_ratio(ref: str, names) -> float:
            ratios = [by[(s, m)]["wql"] / by[(s, ref)]["wql"] for s in names if by[(s, ref)]["wql"] > 0]
            return float(np.exp(np.mean(np.log(ratios))))
        mine = [by[(s, m)] for s in series]
        out.append({"method": m, "rel_wql_ets": gmean_ratio("ETS", series),
                    "rel_wql_naive": gmean_ratio("seasonal naive", series),
                    "rel_wql_ets_real": gmean_ratio("ETS", [s for s in series if s in real]),
                    "mean_wql": float(np.mean([r["wql"] for r in mine])),
                    "mase": float(np.mean([r["mase"] for r in mine])),
                    "coverage80": float(sum(r["coverage80"] * r["windows"] for r in mine) / sum(r["windows"] for r in mine)),
                    "seconds_per_window": float(np.mean([r["seconds"] for r in mine]))})
        s = out[-1]
        print(f"{m:18s} wQL/ETS {s['rel_wql_ets']:.3f} (real {s['rel_wql_ets_real']:.3f})  wQL/naive "
              f"{s['rel_wql_naive']:.3f}  MASE {s['mase']:.3f}  cov80 {s['coverage80']:.2f}  "
              f"{s['seconds_per_window']:.2f} s/window")
    return out


def targets(summary: list[dict], default: str) -> dict:
    ours = next((s for s in summary if s["method"] == default), None)
    if ours is None:
        return {}
    return {f"{default}: geometric-mean wQL / ETS <= 1.0": {"value": ours["rel_wql_ets"], "pass": ours["rel_wql_ets"] <= 1.0},
            f"{default}: geometric-mean wQL / seasonal naive <= 0.85": {"value": ours["rel_wql_naive"],
                                                                         "pass": ours["rel_wql_naive"] <= 0.85},
            f"{default}: 80% coverage in [0.7, 0.9]": {"value": ours["coverage80"],
                                                       "pass": 0.7 <= ours["coverage80"] <= 0.9}}


def run(args) -> dict:
    from science.forecast.series import REAL, SERIES

    torch.set_num_threads(args.threads)
    calls = {**baseline_methods(), **model_methods(args)}
    names = args.series or list(SERIES)
    rows, fans = evaluate(calls, names)
    summary = summarise(rows, list(calls), set(REAL))
    default = f"ResShift {max(args.steps)} steps" if args.weights and max(args.steps) > 1 else None
    return {"settings": {"weights": args.weights, "steps": args.steps, "samples": args.samples, "fit_seconds": args.fit_seconds, "backtests": args.backtests,
                         "threads": args.threads, "series": names},
            "summary": summary, "rows": rows, "fans": fans,
            "targets": targets(summary, default) if default else {}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fans = result["fans"]
    names = [n for n in FAN_SERIES if n in fans]
    plain = [s["method"] for s in result["summary"] if s["method"].startswith("ResShift") and "," not in s["method"]]
    ours = (plain or [None])[-1]                                                  # the most steps, calibrated
    cols = 3
    rows = max(1, -(-len(names) // cols)) + 1
    fig = plt.figure(figsize=(5 * cols, 3.2 * rows))
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        fan = fans[name]
        hist_t, hist_y = fan["history"]
        tgt_t, tgt_y = fan["target"]
        n_hist = len(hist_t)
        x_hist, x_fut = np.arange(n_hist), np.arange(n_hist, n_hist + len(tgt_t))
        ax.plot(x_hist, hist_y, color="k", lw=1)
        ax.plot(x_fut, tgt_y, color="k", lw=1, ls="--", label="truth")
        for method, colour in (("ETS", "tab:orange"), (ours, "tab:blue")):
            if method in fan:
                f = fan[method]
                ax.fill_between(x_fut, f["q10"], f["q90"], color=colour, alpha=0.25)
                ax.plot(x_fut, f["q50"], color=colour, lw=1.2, label=f"{method} (median, 10-90 %)")
        ax.set_title(f"{name} (last validation window)", fontsize=9)
        ax.set_xticks([0, n_hist - 1, x_fut[-1]], [hist_t[0][:7], hist_t[-1][:7], tgt_t[-1][:7]], fontsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(rows, 1, rows)
    summary = result["summary"]
    x = np.arange(len(summary))
    ax.bar(x - 0.2, [s["rel_wql_ets"] for s in summary], 0.4, label="wQL / ETS (geometric mean)")
    ax.bar(x + 0.2, [s["coverage80"] for s in summary], 0.4, label="80 % coverage")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(0.8, color="grey", lw=0.8, ls=":")
    ax.set_xticks(x, [s["method"].replace(", ", ",\n") for s in summary], fontsize=7)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.science.benchmark_forecast", __doc__)
    p.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="the residual-shift model folder ('' to skip)")
    p.add_argument("--tsdiff", default=str(DEFAULT_TSDIFF), help="the self-guided unconditional model folder ('' to skip)")
    p.add_argument("--tsdiff-steps", type=int, default=25, help="DDIM steps of the self-guided model")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4], help="sampler steps of the residual-shift model")
    p.add_argument("--fit-seconds", type=float, nargs="*", default=[10.0],
                   help="also the residual-shift model at its most steps after per-series fine-tuning on each window's "
                        "context for this many seconds (one row per value; none to skip)")
    p.add_argument("--backtests", type=int, default=3,
                   help="residual-shift rows: spread calibrated on this many of the context's last horizons "
                        "(0: off; with it on, an uncalibrated row is added)")
    p.add_argument("--samples", type=int, default=100, help="sample paths per forecast")
    p.add_argument("--series", nargs="*", default=None, help="registry series (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "benchmark_forecast"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

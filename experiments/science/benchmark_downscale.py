"""Downscaling benchmark (issue 15): every method on held-out fields of the shipped model's data, in one run.

Fields: pvlib's monthly Linke turbidity, x8 (40' coarse -> 5' fine), in the held-out longitude band (the
easternmost 20 %, 108 E - 180 E: never seen in training, :func:`science.downscale.fields.split`):
``--regions`` seeded ``--size`` x ``--size`` fine-cell crops that are at least half land (over the sea the
field is nearly constant), each in ``--months``. Coarse input: the 8 x 8 block mean; static input: the
surface altitude and its no-data mask on the fine grid.

Methods, each at ``--members`` members where it is random: bilinear and bicubic interpolation of the coarse
field; the regression mean alone (CorrDiff's first stage, ``regression/``); CorrDiff's recipe (EDM residual
from noise on that mean, ``--edm``, 18 Heun steps = 35 evaluations); ours (ResShift from the regression
mean, ``diffusion/`` of ``--model``) at ``--steps`` steps. Metrics: RMSE of the ensemble mean, CRPS (fair; the
MAE for a single field), spread-skill ratio, rank histogram, radially averaged power spectra (of member 0;
the high-wavenumber score is ``|log(P / P_truth)|`` averaged over the upper half of the wavenumbers), network
evaluations and seconds per field. Targets: ours at 4 steps CRPS <= CorrDiff-18's at >= 4x fewer
evaluations; RMSE <= 0.9 x bicubic; spread-skill in [0.8, 1.2]; high-wavenumber power closer to the truth
than the regression mean's. Writes ``--out``.json and .png (spectra, rank histograms, one field's members).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..report import run_script, save_figure, script_parser

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "science" / "downscale" / "weights" / "linke_x8"
DEFAULT_EDM = Path(__file__).resolve().parent / "baselines" / "downscale_edm"


def held_out_fields(args) -> list[dict]:
    """``{"name", "truth" (H, W), "coarse" (xr.Dataset), "static" (xr.Dataset)}`` per region and month."""
    from science.downscale.fields import coarsen, load, split

    ds = load("linke_turbidity")
    _, val = split(ds, by="region", fraction=0.2, factor=8)
    rng = np.random.default_rng(args.seed)
    land = 1 - val.altitude_missing.values
    size, out, tries = args.size, [], 0
    while len(out) < args.regions * len(args.months) and tries < 10_000:
        tries += 1
        i = int(rng.integers(0, (val.sizes["latitude"] - size) // 8 + 1)) * 8
        j = int(rng.integers(0, (val.sizes["longitude"] - size) // 8 + 1)) * 8
        if land[i:i + size, j:j + size].mean() < 0.5:
            continue
        crop = val.isel(latitude=slice(i, i + size), longitude=slice(j, j + size))
        for month in args.months:
            field = crop.sel(month=[month])
            out.append({"name": f"{float(crop.latitude[0]):.1f}N {float(crop.longitude[0]):.1f}E month {month}",
                        "truth": field.linke_turbidity.values[0], "coarse": coarsen(field[["linke_turbidity"]], 8),
                        "static": crop[["altitude", "altitude_missing"]]})
    return out


def interpolate(coarse: np.ndarray, factor: int, mode: str) -> np.ndarray:
    """Bilinear or bicubic interpolation of a coarse field onto the fine cell centres (torch)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(coarse.astype(np.float32))[None, None]
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)[0].numpy()     # (1, H, W)


def methods(args) -> dict:
    """``name -> (predict(field) -> (M, H, W), evaluations per field)``."""
    import torch

    from science.downscale import Downscaler
    from shared.checkpoints import load_denoiser

    torch.manual_seed(0)
    ours = Downscaler.from_pretrained(args.model, device="cpu")
    out = {
        "bilinear": (lambda f: interpolate(f["coarse"].linke_turbidity.values[0], 8, "bilinear"), 0),
        "bicubic": (lambda f: interpolate(f["coarse"].linke_turbidity.values[0], 8, "bicubic"), 0),
        "regression mean": (lambda f: ours.predict(f["coarse"], f["static"], method="regression")
                            .linke_turbidity.values[:, 0], 1),
    }
    if args.edm:
        edm = Downscaler(ours.regression, load_denoiser(args.edm)[0], ours.settings, "cpu")
        out["CorrDiff (EDM, 18 Heun)"] = (lambda f: edm.predict(f["coarse"], f["static"], members=args.members,
                                                                num_inference_steps=18).linke_turbidity.values[:, 0],
                                          1 + 35)
    for k in args.steps:
        out[f"ours, {k} step{'s' * (k > 1)}"] = (
            lambda f, k=k: ours.predict(f["coarse"], f["static"], members=args.members, num_inference_steps=k)
            .linke_turbidity.values[:, 0], 1 + k)
    return out


def high_k_error(power: np.ndarray, truth: np.ndarray) -> float:
    """``mean |log(P / P_truth)|`` over the upper half of the wavenumbers."""
    half = power.shape[-1] // 2
    return float(np.mean(np.abs(np.log(power[..., half:] / truth[..., half:]))))


def run(args) -> dict:
    import torch

    from science.downscale import metrics

    torch.set_num_threads(args.threads)
    fields = held_out_fields(args)
    print(f"{len(fields)} held-out fields of {args.size} x {args.size} fine cells", flush=True)
    truth = np.stack([f["truth"] for f in fields])
    k, p_truth = metrics.radial_power_spectrum(truth)
    rows, spectra, ranks, example = [], {"truth": p_truth.mean(0).tolist()}, {}, {}
    for name, (predict, nfe) in methods(args).items():
        start = time.perf_counter()
        preds = [predict(f) for f in fields]
        seconds = (time.perf_counter() - start) / len(fields)
        pred = np.stack(preds, axis=1)                                  # (M, N, H, W)
        m = pred.shape[0]
        _, power = metrics.radial_power_spectrum(pred[0])
        row = {"method": name, "members": m, "rmse": metrics.rmse_of_mean(pred, truth),
               "crps": metrics.crps_ensemble(pred, truth, fair=m > 1),
               "spread_skill": metrics.spread_skill(pred, truth) if m > 1 else None,
               "high_k_log_power_error": high_k_error(power.mean(0), p_truth.mean(0)),
               "network_evaluations": nfe, "seconds_per_field": seconds}
        rows.append(row)
        spectra[name] = power.mean(0).tolist()
        if m > 1:
            ranks[name] = metrics.rank_histogram(pred, truth).tolist()
        example[name] = pred[: min(m, 3), 0].tolist()
        print(f"{name:26s} RMSE {row['rmse']:.4f}  CRPS {row['crps']:.4f}  SSR "
              f"{row['spread_skill'] if row['spread_skill'] is None else round(row['spread_skill'], 3)}  "
              f"high-k {row['high_k_log_power_error']:.3f}  NFE {nfe}  {seconds:.2f} s/field", flush=True)
    example["truth"] = [truth[0].tolist()]
    return {"settings": {k_: (v if not isinstance(v, Path) else str(v)) for k_, v in vars(args).items()},
            "fields": [f["name"] for f in fields], "rows": rows, "wavenumbers": k.tolist(), "spectra": spectra,
            "rank_histograms": ranks, "example": example, "targets": targets(rows, args)}


def targets(rows: list[dict], args) -> dict:
    by = {r["method"]: r for r in rows}
    ours = by.get("ours, 4 steps")
    if ours is None:
        return {}
    out = {"ours 4 steps: RMSE <= 0.9 x bicubic": {"value": ours["rmse"] / by["bicubic"]["rmse"],
                                                   "pass": ours["rmse"] <= 0.9 * by["bicubic"]["rmse"]},
           "ours 4 steps: spread-skill in [0.8, 1.2]": {"value": ours["spread_skill"],
                                                        "pass": 0.8 <= ours["spread_skill"] <= 1.2},
           "ours 4 steps: high-wavenumber power closer to the truth than the regression mean's": {
               "value": ours["high_k_log_power_error"],
               "regression_mean": by["regression mean"]["high_k_log_power_error"],
               "pass": ours["high_k_log_power_error"] < by["regression mean"]["high_k_log_power_error"]}}
    edm = by.get("CorrDiff (EDM, 18 Heun)")
    if edm is not None:
        out["ours 4 steps: CRPS <= CorrDiff-18's at >= 4x fewer evaluations (CRPS ratio)"] = {
            "value": ours["crps"] / edm["crps"],
            "evaluations_ratio": edm["network_evaluations"] / ours["network_evaluations"],
            "pass": ours["crps"] <= edm["crps"] and edm["network_evaluations"] >= 4 * ours["network_evaluations"]}
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401  (matplotlib.ticker.NullFormatter below)

    fig = plt.figure(figsize=(15, 8.5))
    ax = fig.add_subplot(2, 3, 1)
    k = np.asarray(result["wavenumbers"])
    for name, power in result["spectra"].items():
        ax.loglog(k, power, label=name, color="k" if name == "truth" else None, lw=2 if name == "truth" else 1)
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("wavenumber (cycles per 5' cell)")
    ax.set_title("radially averaged power (member 0)", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(2, 3, 2)
    for name, counts in result["rank_histograms"].items():
        c = np.asarray(counts, dtype=float)
        ax.plot(np.arange(len(c)), c / c.sum(), marker=".", label=name)
    ax.axhline(1 / (len(c)), color="k", lw=0.8, ls=":")
    ax.set_title("rank histograms (flat = calibrated)", fontsize=9)
    ax.legend(fontsize=7)
    ax = fig.add_subplot(2, 3, 3)
    rows = result["rows"]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["rmse"] for r in rows], 0.4, label="RMSE of the mean")
    ax.bar(x + 0.2, [r["crps"] for r in rows], 0.4, label="CRPS")
    ax.set_xticks(x, [r["method"].replace(" (", "\n(") for r in rows], fontsize=6, rotation=30)
    ax.legend(fontsize=7)
    shown = ["truth", "bicubic", "regression mean"] + [n for n in result["example"] if n.startswith("ours")][-1:]
    for i, name in enumerate(shown):
        ax = fig.add_subplot(2, 4, 5 + i)
        ax.imshow(np.asarray(result["example"][name][0]), origin="lower", cmap="viridis")
        ax.set_title(f"{name}\n{result['fields'][0]}", fontsize=8)
        ax.set_axis_off()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.science.benchmark_downscale", __doc__)
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="downscaler folder (regression/ and diffusion/)")
    p.add_argument("--edm", default=str(DEFAULT_EDM), help="CorrDiff's EDM residual model folder ('' to skip)")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4], help="sampler steps of ours")
    p.add_argument("--members", type=int, default=16)
    p.add_argument("--regions", type=int, default=6, help="held-out crops (at least half land)")
    p.add_argument("--months", type=int, nargs="+", default=[1, 7])
    p.add_argument("--size", type=int, default=128, help="crop side in fine cells (a multiple of 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "benchmark_downscale"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

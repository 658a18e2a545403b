"""MRI reconstruction benchmark (issue 13): every method on the same held-out slices, in one run.

    python -m experiments.restore.benchmark_mri --weights restore/mri/weights/resshift \
        --unet runs/mri_unet/pretrained --ddpm runs/mri_ddpm/pretrained

Slices: ``--slices`` axial slices of the validation volume (never trained on, split by volume),
acquired as :mod:`restore.mri.simulate` does (seeded, noise-free) in two settings: 4x random
single-coil and 8x equispaced 8-coil. Multi-coil methods all use the same ESPIRiT maps estimated
from the undersampled k-space (:mod:`restore.mri.coils`, as a user's file without maps gets; their
seconds are reported apart), and are scored against the true coil combination.
Methods: zero-filled; sigpy compressed sensing, l1-wavelet (FISTA) and total variation (ADMM), lambda
per setting the best on the training split (``python -m experiments.restore.tune_mri_cs``); the
fastMRI U-Net (``--unet``, :mod:`restore.mri.unet`, same data and steps, DC on its output); an
SR3-style DDPM with DC every step at ``--ddpm-steps`` (``--ddpm``); the ResShift model with hard DC at
every step, only at the end and never (the ablation), at ``--steps``, and the mean of ``--samples`` draws with
the calibration of its std map (Pearson correlation of std with the absolute error, foreground pixels).
Metrics: fastMRI's NMSE, PSNR and SSIM on the magnitude volume of each setting (``fastmri.evaluate``,
``maxval`` = the target's peak), network evaluations and seconds per slice on this CPU
(``--threads``), and the relative data residual ``|M F S x - y| / |y|`` of each output with the
maps it used. Targets (issue 13) are checked on the single-coil setting and reported for both.
Writes ``--out``.json and .png.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..report import run_script, save_figure, script_parser

HERE = Path(__file__).parent
RESULTS = HERE / "results"
#: The shipped model and the baselines kept beside the benchmark (``make train-mri train-mri-baselines``).
DEFAULTS = {"weights": HERE.parents[1] / "restore" / "mri" / "weights" / "resshift",
            "one_step": HERE.parents[1] / "restore" / "mri" / "weights" / "onestep",
            "unet": HERE / "baselines" / "mri_unet", "ddpm": HERE / "baselines" / "mri_ddpm"}
SETTINGS = {"4x random, 1 coil": dict(acceleration=4, mask="random", coils=None),
            "8x equispaced, 8 coils": dict(acceleration=8, mask="equispaced", coils=8)}
TARGET_SETTING = "4x random, 1 coil"


@dataclass
class Case:
    """One held-out acquisition and the coil maps every method uses for it (ESPIRiT, or None)."""

    acq: object
    maps: Optional[torch.Tensor]
    maps_seconds: float = 0.0


def cases(setting: dict, slices: int, seed: int = 0) -> list[Case]:
    from restore.mri.coils import espirit_maps
    from restore.mri.data import VAL_SIZE
    from restore.mri.simulate import simulate
    from restore.mri.volumes import split_slices

    stack = next(iter(split_slices("val", ("axial",), size=VAL_SIZE).values()))
    picks = np.linspace(0, len(stack) - 1, slices + 2).round().astype(int)[1:-1]
    out = []
    for i, k in enumerate(picks):
        acq = simulate(stack[k], seed=seed + i, **setting)
        if acq.maps is None:
            out.append(Case(acq, None))
            continue
        start = time.perf_counter()
        maps = torch.from_numpy(espirit_maps(acq.measured.numpy(), acq.mask.numpy()))
        out.append(Case(acq, maps, time.perf_counter() - start))
    return out


def tuned_lambdas(setting: str) -> dict[str, float]:
    """The lambda per CS method that :mod:`experiments.restore.tune_mri_cs` found best on the
    training split for ``setting`` (empty when it has not been run: the defaults apply)."""
    import json

    path = RESULTS / "tune_mri_cs.json"
    if not path.is_file():
        return {}
    rows = [r for r in json.loads(path.read_text())["rows"] if r["setting"] == setting]
    best: dict[str, tuple[float, float]] = {}
    for r in rows:
        if r["method"] not in best or r["psnr"] > best[r["method"]][1]:
            best[r["method"]] = (r["lam"], r["psnr"])
    return {method: lam for method, (lam, _) in best.items()}


def load(path: Optional[str]):
    """The pipeline of model folder ``path``; None (with a note) when it is empty or not there."""
    if not path or not (Path(path) / "model.json").is_file():
        if path:
            print(f"skipping {path}: no model there (train it, see the module docstring)")
        return None
    import restore.mri.unet  # noqa: F401  (registers the U-Net backbone)
    from restore.mri.pipeline import MRIReconstructionPipeline

    return MRIReconstructionPipeline.from_pretrained(path, device="cpu")


def methods(args, lambdas: dict[str, float]) -> dict:
    """``name -> run(case) -> (complex images (samples, H, W), network evaluations)``."""
    from restore.mri.baselines import compressed_sensing, zero_filled

    def baseline(fn):
        def run(case):
            maps = None if case.maps is None else case.maps.numpy()
            return torch.from_numpy(fn(case.acq.measured.numpy(), case.acq.mask.numpy(), maps))[None], 0
        return run

    def model(pipe, steps, dc, samples=1, one_step=False):
        def run(case):
            images, _, _ = pipe.reconstruct(case.acq.measured, case.acq.mask, case.maps, num_inference_steps=steps,
                                            dc=dc, samples=samples, one_step=one_step,
                                            generator=torch.Generator().manual_seed(0))
            return images, pipe.last_run.network_evaluations
        return run

    def cs(method):
        return baseline(lambda k, m, s: compressed_sensing(k, m, s, method, lambdas.get(method)))

    table = {"zero-filled": baseline(zero_filled), "CS l1-wavelet": cs("l1-wavelet"),
             "CS total variation": cs("total-variation")}
    unet, ddpm, resshift, student = (load(p) for p in (args.unet, args.ddpm, args.weights, args.one_step))
    if unet is not None:
        table["fastMRI U-Net + DC"] = model(unet, 1, "end")
    for n in args.ddpm_steps if ddpm is not None else ():
        table[f"SR3 DDPM {n} steps, DC every step"] = model(ddpm, n, "hard")
    if resshift is not None:
        table[f"ResShift {args.steps} steps, DC every step"] = model(resshift, args.steps, "hard")
        table[f"ResShift {args.steps} steps, DC at the end"] = model(resshift, args.steps, "end")
        table[f"ResShift {args.steps} steps, no DC"] = model(resshift, args.steps, "none")   # what DC is worth
        table["ResShift 1 step, DC"] = model(resshift, 1, "hard")      # what the student must beat
        if args.samples > 1:
            table[f"ResShift {args.steps} steps, mean of {args.samples}"] = model(resshift, args.steps, "hard",
                                                                                args.samples)
    if student is not None:
        table["one-step student, DC"] = model(student, 1, "hard", one_step=True)
    return table


def evaluate(targets: np.ndarray, outputs: np.ndarray) -> dict:
    from fastmri import evaluate as fe

    return {"nmse": float(fe.nmse(targets, outputs)), "psnr": float(fe.psnr(targets, outputs)),
            "ssim": float(np.asarray(fe.ssim(targets, outputs)).reshape(-1)[0])}


def calibration(targets: np.ndarray, means: np.ndarray, stds: np.ndarray, threshold: float = 0.05) -> float:
    """Pearson correlation of the std map with ``|mean - target|`` over foreground pixels
    (target > ``threshold`` x its peak) of all slices."""
    inside = targets > threshold * targets.max()
    return float(np.corrcoef(stds[inside], np.abs(means - targets)[inside])[0, 1])


def measure(name: str, fn, cs: list[Case]) -> dict:
    from restore.mri.fourier import cartesian_measurement
    from shared.complex import complex_to_channels

    targets = np.stack([c.acq.target.abs().numpy() for c in cs])
    means, stds, nfe, seconds, residual = [], [], 0, 0.0, 0.0
    for c in cs:
        start = time.perf_counter()
        images, n = fn(c)
        seconds += time.perf_counter() - start + c.maps_seconds
        nfe += n
        m = cartesian_measurement(c.acq.kspace[None], c.acq.mask, None if c.maps is None else c.maps[None])
        for image in images:
            residual = max(residual, float(m.residual(complex_to_channels(image[None, None].to(torch.complex64)))))
        magnitude = images.abs().numpy()
        means.append(magnitude.mean(0))
        stds.append(magnitude.std(0))
    row = {"method": name, **evaluate(targets, np.stack(means)), "nfe_per_slice": nfe / len(cs),
           "seconds_per_slice": seconds / len(cs), "max_data_residual": residual}
    if len(images) > 1:
        row["std_error_correlation"] = calibration(targets, np.stack(means), np.stack(stds))
    return row


def targets(rows: list[dict], steps: int, samples: int) -> dict:
    """Issue 13's targets on :data:`TARGET_SETTING` (only those whose methods ran)."""
    r = {x["method"]: x for x in rows if x["setting"] == TARGET_SETTING}
    ours = r.get(f"ResShift {steps} steps, DC every step")
    out = {}
    if ours is None:
        return out
    best_cs = max((r[m] for m in ("CS l1-wavelet", "CS total variation")), key=lambda x: x["psnr"])
    for metric, margin in (("psnr", 0.5), ("ssim", 0.0)):
        value = ours[metric] - best_cs[metric]
        out[f"ResShift-{steps} {metric} - best CS >= {margin}"] = {"value": value, "pass": value >= margin}
        if "fastMRI U-Net + DC" in r:
            value = ours[metric] - r["fastMRI U-Net + DC"][metric]
            out[f"ResShift-{steps} {metric} - U-Net >= {margin}"] = {"value": value, "pass": value >= margin}
    value = ours["psnr"] - r[f"ResShift {steps} steps, DC at the end"]["psnr"]
    out["DC every step - DC at the end PSNR >= 0.5"] = {"value": value, "pass": value >= 0.5}
    if "one-step student, DC" in r:
        value = ours["psnr"] - r["one-step student, DC"]["psnr"]
        out["ResShift-4 - one-step PSNR <= 0.3"] = {"value": value, "pass": value <= 0.3}
    out["hard DC data residual < 1e-5 (1 coil)"] = {"value": ours["max_data_residual"],
                                                    "pass": ours["max_data_residual"] < 1e-5}
    value = ours["psnr"] - r["zero-filled"]["psnr"]
    out["ResShift-4 PSNR - zero-filled >= 2"] = {"value": value, "pass": value >= 2.0}
    return out


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    rows = []
    for name, setting in SETTINGS.items():
        cs = cases(setting, args.slices)
        lambdas = tuned_lambdas(name)
        for method, fn in methods(args, lambdas).items():
            rows.append({"setting": name, **measure(method, fn, cs), "cs_lambdas": lambdas})
            r = rows[-1]
            calib = f"  std~|err| r={r['std_error_correlation']:.2f}" if "std_error_correlation" in r else ""
            print(f"{name:24s} {method:36s} PSNR {r['psnr']:6.2f}  SSIM {r['ssim']:.4f}  NMSE {r['nmse']:.4f}  "
                  f"NFE {r['nfe_per_slice']:5.1f}  {r['seconds_per_slice']:6.2f} s  residual "
                  f"{r['max_data_residual']:.1e}{calib}", flush=True)
    setup = {k: getattr(args, k) for k in ("slices", "steps", "samples", "ddpm_steps", "weights", "unet", "ddpm",
                                           "one_step", "threads")}
    return {"rows": rows, "targets": targets(rows, args.steps, args.samples), "setup": setup}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["setting"] for r in result["rows"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), 4.2), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = [r for r in result["rows"] if r["setting"] == setting]
        ax.barh([r["method"] for r in rows], [r["psnr"] for r in rows])
        ax.set_xlim(min(r["psnr"] for r in rows) - 2, max(r["psnr"] for r in rows) + 1)
        ax.set_xlabel("PSNR (dB, fastmri.evaluate)")
        ax.set_title(setting)
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.restore.benchmark_mri", __doc__)
    p.add_argument("--weights", default=str(DEFAULTS["weights"]), help="the ResShift model folder ('' to skip)")
    p.add_argument("--unet", default=str(DEFAULTS["unet"]), help="the fastMRI U-Net folder (mri_unet.yaml)")
    p.add_argument("--ddpm", default=str(DEFAULTS["ddpm"]), help="the SR3-style DDPM folder (mri_ddpm.yaml)")
    p.add_argument("--one-step", default=str(DEFAULTS["one_step"]), help="the one-step student folder")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--ddpm-steps", type=int, nargs="+", default=[10, 25])
    p.add_argument("--samples", type=int, default=8, help="draws for the mean and the std map (1: skip)")
    p.add_argument("--slices", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "benchmark_mri"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

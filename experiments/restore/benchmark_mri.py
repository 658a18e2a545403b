"""MRI reconstruction benchmark (issue 13): every method on the same held-out slices, in one run.

    python -m experiments.restore.benchmark_mri --weights runs/mri_resshift/pretrained

Slices: ``--slices`` axial slices of the validation volume (never trained on, split by volume),
acquired as :mod:`restore.mri.simulate` does (seeded, noise-free) in two settings: 4x random
single-coil and 8x equispaced 8-coil (SENSE-style data consistency with the true maps).
Methods: zero-filled; sigpy compressed sensing, l1-wavelet (FISTA) and total variation (ADMM);
the ResShift model with hard data consistency at every step and only at the end (the ablation),
at ``--steps``. Metrics: fastMRI's NMSE, PSNR and SSIM on the magnitude volume of each setting
(``fastmri.evaluate``, ``maxval`` = the target's peak), network evaluations and seconds per slice
on this CPU, and the relative data residual ``|M F S x - y| / |y|`` of each output.
CS lambda per setting is the best on the training split (``python -m
experiments.restore.tune_mri_cs`` first; without its results the defaults of
:data:`restore.mri.baselines.CS_METHODS` apply). Writes ``--out``.json and .png. Not yet in it
(issue 13): the fastMRI U-Net, the SR3-style DDPM with DC, the one-step student, the uncertainty
calibration.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ..report import run_script, save_figure, script_parser

RESULTS = Path(__file__).parent / "results"
SETTINGS = {"4x random, 1 coil": dict(acceleration=4, mask="random", coils=None),
            "8x equispaced, 8 coils": dict(acceleration=8, mask="equispaced", coils=8)}


def acquisitions(setting: dict, slices: int, seed: int = 0):
    from restore.mri.data import VAL_SIZE
    from restore.mri.simulate import simulate
    from restore.mri.volumes import split_slices

    stack = next(iter(split_slices("val", ("axial",), size=VAL_SIZE).values()))
    picks = np.linspace(0, len(stack) - 1, slices + 2).round().astype(int)[1:-1]
    return [simulate(stack[k], seed=seed + i, **setting) for i, k in enumerate(picks)]


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


def methods(pipe, steps: int, lambdas: dict[str, float]) -> dict:
    from restore.mri.baselines import compressed_sensing, zero_filled

    def baseline(fn):
        def run(acq):
            maps = None if acq.maps is None else acq.maps.numpy()
            return torch.from_numpy(fn(acq.measured.numpy(), acq.mask.numpy(), maps)), 0
        return run

    def model(dc):
        def run(acq):
            images, _, _ = pipe.reconstruct(acq.measured, acq.mask, acq.maps, num_inference_steps=steps, dc=dc,
                                            generator=torch.Generator().manual_seed(0))
            return images[0], pipe.last_run.network_evaluations
        return run

    def cs(method):
        return baseline(lambda k, m, s: compressed_sensing(k, m, s, method, lambdas.get(method)))

    table = {"zero-filled": baseline(zero_filled), "CS l1-wavelet": cs("l1-wavelet"),
             "CS total variation": cs("total-variation")}
    if pipe is not None:
        table[f"ResShift {steps} steps, DC every step"] = model("hard")
        table[f"ResShift {steps} steps, DC at the end"] = model("end")
    return table


def evaluate(targets: np.ndarray, outputs: np.ndarray) -> dict:
    from fastmri import evaluate as fe

    return {"nmse": float(fe.nmse(targets, outputs)), "psnr": float(fe.psnr(targets, outputs)),
            "ssim": float(np.asarray(fe.ssim(targets, outputs)).reshape(-1)[0])}


def run(args) -> dict:
    from shared.complex import complex_to_channels

    torch.set_num_threads(args.threads)
    pipe = None
    if args.weights:
        from restore.mri.pipeline import MRIReconstructionPipeline

        pipe = MRIReconstructionPipeline.from_pretrained(args.weights, device="cpu")
    rows = []
    for name, setting in SETTINGS.items():
        acqs = acquisitions(setting, args.slices)
        targets = np.stack([a.target.abs().numpy() for a in acqs])
        lambdas = tuned_lambdas(name)
        for method, fn in methods(pipe, args.steps, lambdas).items():
            outs, nfe, seconds, residual = [], 0, 0.0, 0.0
            for acq in acqs:
                start = time.perf_counter()
                image, n = fn(acq)
                seconds += time.perf_counter() - start
                nfe += n
                m = acq.operator()
                residual = max(residual, float(m.residual(complex_to_channels(image[None, None].to(torch.complex64)))))
                outs.append(image.abs().numpy())
            rows.append({"setting": name, "method": method, "cs_lambdas": lambdas, **evaluate(targets, np.stack(outs)),
                         "nfe_per_slice": nfe / len(acqs), "seconds_per_slice": seconds / len(acqs),
                         "max_data_residual": residual})
            r = rows[-1]
            print(f"{name:24s} {method:34s} PSNR {r['psnr']:6.2f}  SSIM {r['ssim']:.4f}  NMSE {r['nmse']:.4f}  "
                  f"NFE {r['nfe_per_slice']:4.1f}  {r['seconds_per_slice']:6.2f} s  residual {residual:.1e}", flush=True)
    return {"rows": rows, "setup": {"slices": args.slices, "steps": args.steps, "weights": args.weights,
                                    "threads": args.threads}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["setting"] for r in result["rows"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 3.8), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = [r for r in result["rows"] if r["setting"] == setting]
        ax.barh([r["method"] for r in rows], [r["psnr"] for r in rows])
        ax.set_xlim(min(r["psnr"] for r in rows) - 2, max(r["psnr"] for r in rows) + 1)
        ax.set_xlabel("PSNR (dB, fastmri.evaluate)")
        ax.set_title(setting)
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.restore.benchmark_mri", __doc__)
    p.add_argument("--weights", default=None, help="a trained ResShift model folder (omit: baselines only)")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--slices", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "benchmark_mri"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

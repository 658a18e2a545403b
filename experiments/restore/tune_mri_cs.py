"""Tune the compressed-sensing baselines' lambda on the TRAINING split (issue 13: the CS peers get
the same chance as our models; the validation volume is never used here).

    python -m experiments.restore.tune_mri_cs          # writes experiments/restore/results/tune_mri_cs.{json,png}

For each regulariser of :data:`restore.mri.baselines.CS_METHODS` and each lambda of its grid, the
mean PSNR (``fastmri.evaluate.psnr`` per slice) over ``--slices`` random training slices (all three
orientations, fixed seed) in both benchmark settings (4x random single-coil, 8x equispaced
8-coil). The best lambda by the mean over both settings is printed; ``CS_METHODS`` holds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report import run_script, save_figure, script_parser
from .benchmark_mri import SETTINGS

RESULTS = Path(__file__).parent / "results"
GRIDS = {"l1-wavelet": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], "total-variation": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1]}


def training_slices(n: int, seed: int = 0) -> list[np.ndarray]:
    from restore.mri.volumes import split_slices

    stacks = [s for stack in split_slices("train").values() for s in stack]
    rng = np.random.default_rng(seed)
    return [stacks[i] for i in rng.choice(len(stacks), n, replace=False)]


def run(args) -> dict:
    from fastmri.evaluate import psnr

    from restore.mri.baselines import compressed_sensing
    from restore.mri.simulate import simulate

    slices = training_slices(args.slices)
    rows = []
    for setting, kw in SETTINGS.items():
        acqs = [simulate(s, seed=1000 + i, **kw) for i, s in enumerate(slices)]
        for method, grid in GRIDS.items():
            for lam in grid:
                scores = []
                for acq in acqs:
                    maps = None if acq.maps is None else acq.maps.numpy()
                    out = np.abs(compressed_sensing(acq.measured.numpy(), acq.mask.numpy(), maps, method, lam))
                    truth = acq.target.abs().numpy()
                    scores.append(psnr(truth[None], out[None]))
                rows.append({"setting": setting, "method": method, "lam": lam, "psnr": float(np.mean(scores))})
                print(f"{setting:24s} {method:16s} lambda {lam:7.0e}  PSNR {rows[-1]['psnr']:6.2f}", flush=True)
    best = {}
    for method, grid in GRIDS.items():
        means = {lam: np.mean([r["psnr"] for r in rows if r["method"] == method and r["lam"] == lam]) for lam in grid}
        best[method] = float(max(means, key=means.get))
        print(f"best {method}: lambda {best[method]:g} (mean PSNR {means[best[method]]:.2f} dB over both settings)")
    return {"rows": rows, "best": best, "setup": {"slices": args.slices, "split": "train"}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(GRIDS), figsize=(11, 3.6))
    for ax, method in zip(axes, GRIDS):
        for setting in SETTINGS:
            rows = [r for r in result["rows"] if r["method"] == method and r["setting"] == setting]
            ax.plot([r["lam"] for r in rows], [r["psnr"] for r in rows], "o-", label=setting)
        ax.set_xscale("log")
        ax.set_xlabel("lambda (data scaled to a zero-filled peak of 1)")
        ax.set_ylabel("mean PSNR on training slices (dB)")
        ax.set_title(method)
        ax.legend()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.restore.tune_mri_cs", __doc__)
    p.add_argument("--slices", type=int, default=6)
    p.add_argument("--out", default=str(RESULTS / "tune_mri_cs"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

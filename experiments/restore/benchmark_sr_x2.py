"""x2 super-resolution with the shipped x4 models (``--scale 2``) against bicubic and Lanczos x2, one run.

    python -m experiments.restore.benchmark_sr_x2      # writes results/sr_x2_benchmark.{json,png}

Every validation photo is degraded by 2 (bicubic, and the realistic degradation with the same seeds as the
x4 benchmark's), then brought back to full size by: bicubic x2; Lanczos x2; the one-step student as
``python -m restore.sr --scale 2`` runs it (its x4 output box-averaged over 2 x 2 blocks); and, to show why
the input is not shrunk first, the student on the input bicubic-downscaled by 2 (x4 of a half-size input).
PSNR-Y and SSIM-Y (border 2), seconds per image. The reuse is justified where the one-step row beats
bicubic; a dedicated x2 model is the alternative (not trained yet).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from restore.sr.data import validation_pairs
from restore.sr.degradations import DEGRADATIONS, bicubic_down, bicubic_up
from restore.sr.metrics import psnr_y, ssim_y
from restore.sr.pipeline import SuperResolutionPipeline

from ..report import run_script, save_figure, script_parser
from .benchmark_sr import lanczos

RESULTS = Path(__file__).parent / "results"


def build_methods(pipe: SuperResolutionPipeline) -> dict:
    """``name -> lr (3, h, w) in [0, 1] -> x2 image``."""
    def shrunk_then_x4(lr):
        h, w = lr.shape[-2:]
        return pipe(bicubic_down(lr[:, :h // 2 * 2, :w // 2 * 2], 2).clamp(0, 1), seed=0)
    return {
        "bicubic": lambda lr: bicubic_up(lr[None], 2).clamp(0, 1)[0],
        "lanczos": lambda lr: lanczos(lr, 2),
        "one-step, x4 box-averaged (--scale 2)": lambda lr: pipe(lr, seed=0, scale=2),
        "one-step on the input shrunk by 2": shrunk_then_x4,
    }


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    pipe = SuperResolutionPipeline.from_pretrained(args.weights, device="cpu")
    methods, rows = build_methods(pipe), []
    for kind in DEGRADATIONS:
        for item in validation_pairs(kind, scale=2):
            hr, lr = (item["x0"] + 1) / 2, (item["cond"] + 1) / 2
            for name, fn in methods.items():
                start = time.perf_counter()
                out = fn(lr)
                seconds = time.perf_counter() - start
                h, w = min(out.shape[-2], hr.shape[-2]), min(out.shape[-1], hr.shape[-1])
                out, ref = out[:, :h, :w], hr[:, :h, :w]
                rows.append({"degradation": kind, "photo": item["name"], "method": name, "seconds": seconds,
                             "psnr_y": psnr_y(out, ref, border=2), "ssim_y": ssim_y(out, ref, border=2)})
                print(f"{kind:9s} {item['name']:14s} {name:38s} PSNR {rows[-1]['psnr_y']:.2f}  "
                      f"SSIM {rows[-1]['ssim_y']:.4f}  {seconds:.2f}s", flush=True)
    summary = {kind: {m: {k: float(np.mean([r[k] for r in rows if r["degradation"] == kind and r["method"] == m]))
                          for k in ("psnr_y", "ssim_y", "seconds")} for m in methods} for kind in DEGRADATIONS}
    for kind, s in summary.items():
        print(f"\n{kind}\n" + "\n".join(f"{m:38s} PSNR-Y {v['psnr_y']:.3f}  SSIM-Y {v['ssim_y']:.4f}  {v['seconds']:.2f} s"
                                      for m, v in s.items()))
    return {"rows": rows, "summary": summary, "setup": {"threads": args.threads}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(result["summary"])
    fig, axes = plt.subplots(1, len(kinds), figsize=(6 * len(kinds), 4), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        s = result["summary"][kind]
        names = list(s)
        gains = [s[m]["psnr_y"] - s["bicubic"]["psnr_y"] for m in names]
        ax.barh(names, gains, color=["C0" if g >= 0 else "C3" for g in gains])
        ax.axvline(0, color="k", lw=1)
        ax.set_xlabel("PSNR-Y gain over bicubic x2 (dB)")
        ax.set_title(f"x2, {kind} degradation")
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.restore.benchmark_sr_x2", __doc__)
    p.add_argument("--weights", default=None, help="SR weights folder (default: shipped)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "sr_x2_benchmark"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Choose StoRM's few-step setting: sampler x start time x steps on tuning clips, one run.

    python -m experiments.audio.tune_storm          # writes results/storm_tuning.{json,png}

StoRM diffuses from the predictive estimate ``y_hat``: it starts at ``y_hat + sigma(t_start) z``
and runs to ``t_eps`` with the probability-flow ODE or SGMSE+'s predictor-corrector
(:class:`audio.enhancer.StormSetting`). The tuning clips are held-out utterances drawn with a
different seed from the benchmark's (``experiments.audio.benchmark_se``), so the default chosen
here is not fitted to the clips it is reported on. The best setting has the best mean rank of
SI-SDR and PESQ on the 0-10 dB inputs (either metric alone can pick a setting that is good on it
only by chance on few clips); the predictive estimate alone is scored for reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audio.data import validation_clips
from audio.enhancer import SpeechEnhancer, StormSetting
from audio.metrics import all_metrics
from audio.spectral import SAMPLE_RATE

from ..report import script_parser, write_results
from .benchmark_se import NOISY_CONDITIONS, SYNTHETIC_CONDITIONS

RESULTS = Path(__file__).parent / "results"
TUNING_SEED = 7   # the benchmark draws its clips with seed 2024


def score(enhancer: SpeechEnhancer, clips: list[dict], method: str, steps: int) -> dict:
    """Mean SI-SDR and PESQ on the 0-10 dB clips and on the reverberant ones, plus evaluations."""
    rows = []
    for i, clip in enumerate(clips):
        out = enhancer(clip["noisy"], SAMPLE_RATE, task=clip["task"], method=method, steps=steps, seed=i)
        rows.append({"condition": clip["condition"], "nfe": enhancer.last_run.network_evaluations,
                     **all_metrics(out, clip["clean"])})
    result = {"nfe": float(np.mean([r["nfe"] for r in rows]))}
    for group, conds in (("noisy", NOISY_CONDITIONS), ("reverb", ("reverb",))):
        sel = [r for r in rows if r["condition"] in conds]
        if sel:
            result[group] = {k: float(np.mean([r[k] for r in sel])) for k in ("si_sdr", "pesq")}
    return result


def settings(t_starts: list[float], steps: list[int]) -> list[tuple[StormSetting, int]]:
    """The grid: probability-flow ODE and predictor-corrector (one corrector, as SGMSE+) from each start."""
    return [(StormSetting(sampler, t, corrector_steps=1), n)
            for sampler in ("ode", "pc") for t in t_starts for n in steps]


def best_setting(grid: list[dict]) -> dict:
    """The row with the lowest mean of its SI-SDR rank and its PESQ rank (0 = best), 0-10 dB inputs."""
    rank = {}
    for metric in ("si_sdr", "pesq"):
        for r, i in enumerate(sorted(range(len(grid)), key=lambda i: -grid[i]["noisy"][metric])):
            rank[i] = rank.get(i, 0) + r / 2
    return grid[min(rank, key=lambda i: (rank[i], -grid[i]["noisy"]["si_sdr"]))]


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    lines: dict = {}
    for row in result["grid"]:
        lines.setdefault((row["sampler"], row["t_start"]), []).append((row["steps"], row["noisy"]["si_sdr"]))
    for (sampler, t), pts in lines.items():
        ax.plot(*zip(*sorted(pts)), marker="o", ls="-" if sampler == "ode" else "--", label=f"{sampler}, t_start {t:g}")
    ax.axhline(result["predictive"]["noisy"]["si_sdr"], color="k", lw=1, label="predictive estimate alone")
    ax.axhline(result["noisy_input"]["si_sdr"], color="grey", lw=1, ls=":", label="noisy input")
    ax.set_xlabel("StoRM steps")
    ax.set_ylabel("SI-SDR (dB), 0-10 dB inputs")
    ax.set_title("StoRM few-step settings (tuning clips)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.audio.tune_storm", __doc__)
    p.add_argument("--weights", default=None, help="audio weights folder (default: shipped)")
    p.add_argument("--clips", type=int, default=3, help="tuning clips per condition")
    p.add_argument("--t-start", nargs="+", type=float, default=[0.1, 0.2, 0.35, 0.5, 1.0])
    p.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "storm_tuning"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    enhancer = SpeechEnhancer.from_pretrained(args.weights, device="cpu")
    clips = validation_clips(args.clips, SYNTHETIC_CONDITIONS, seed=TUNING_SEED)
    noisy = [{"condition": c["condition"], **all_metrics(c["noisy"], c["clean"])} for c in clips]
    result = {"noisy_input": {k: float(np.mean([r[k] for r in noisy if r["condition"] in NOISY_CONDITIONS]))
                              for k in ("si_sdr", "pesq")},
              "predictive": score(enhancer, clips, "predictive", 1), "grid": [],
              "setup": {"clips_per_condition": args.clips, "seed": TUNING_SEED, "threads": args.threads}}
    print(f"predictive alone: SI-SDR {result['predictive']['noisy']['si_sdr']:.2f} dB", flush=True)
    for setting, steps in settings(args.t_start, args.steps):
        enhancer.storm_setting = setting
        row = {"sampler": setting.sampler, "t_start": setting.t_start, "steps": steps,
               **score(enhancer, clips, "storm", steps)}
        result["grid"].append(row)
        print(f"{setting.sampler:3s} t_start {setting.t_start:4.2f} steps {steps}: SI-SDR {row['noisy']['si_sdr']:6.2f} dB"
              f"  PESQ {row['noisy']['pesq']:.3f}  reverb SI-SDR {row['reverb']['si_sdr']:6.2f}  NFE {row['nfe']:.0f}",
              flush=True)
    best = result["best"] = best_setting(result["grid"])
    paths = write_results(result, args.out, plot)
    print(f"\nbest: {best['sampler']} from t_start {best['t_start']} with {best['steps']} steps "
          f"(SI-SDR {best['noisy']['si_sdr']:.2f} dB, PESQ {best['noisy']['pesq']:.3f}; predictive alone "
          f"{result['predictive']['noisy']['si_sdr']:.2f} dB, {result['predictive']['noisy']['pesq']:.3f})\nwrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

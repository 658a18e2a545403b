"""Speech enhancement benchmark on held-out clips (unseen voices, texts, noises and rooms), one run.

    python -m experiments.audio.benchmark_se          # writes results/se_benchmark.{json,png}

Conditions: input SNR 0, 5 and 10 dB (validation noises: recorded sounds, babble, coloured) and
reverberant speech (validation rooms, T60 0.2-1.0 s), on synthesised voices; and ``natural``, the held-out
recorded human voice in recorded validation noise only at 0-10 dB (issue 17's condition: its targets are
checked there). Methods: the noisy input; ``noisereduce``
(spectral gating); DeepFilterNet 3 and RNNoise (:mod:`experiments.audio.peers`, 48 kHz tools run through
soxr resampling, delays removed); the predictive model; SGMSE+ predictor-corrector at 30 steps (60 evaluations);
StoRM at 1, 2 and 4 steps of its best few-step setting (chosen by ``experiments.audio.tune_storm``), and its
1-step diffusion stage started from DeepFilterNet 3's estimate instead of the predictive model's;
the consistency model at 1, 2 and 4 steps. Metrics: PESQ (wide-band), ESTOI, SI-SDR, network
evaluations and real-time factor (processing seconds / audio seconds, after a warm-up) on this CPU.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from audio.data import CONDITIONS, validation_clips
from audio.enhancer import SpeechEnhancer
from audio.metrics import all_metrics
from audio.options import DEFAULT_METHOD
from audio.spectral import SAMPLE_RATE

from ..report import print_targets, script_parser, write_results

RESULTS = Path(__file__).parent / "results"
NOISY_CONDITIONS = ("snr0", "snr5", "snr10")
SYNTHETIC_CONDITIONS = NOISY_CONDITIONS + ("reverb",)


def build_methods(enhancer: SpeechEnhancer, storm_steps: list[int], onestep_steps: list[int]) -> dict[str, Callable]:
    """Every method maps ``(noisy, task, seed) -> (enhanced, network evaluations)``."""
    import noisereduce

    def model(method: str, steps: int):
        def run(noisy, task, seed):
            out = enhancer(noisy, SAMPLE_RATE, task=task, method=method, steps=steps, seed=seed)
            return out, enhancer.last_run.network_evaluations
        return run

    from .peers import PEERS, storm_on_peer

    methods: dict[str, Callable] = {
        "noisy input": lambda noisy, task, seed: (noisy, 0),
        "noisereduce": lambda noisy, task, seed: (noisereduce.reduce_noise(y=noisy, sr=SAMPLE_RATE).astype(np.float32), 0),
    }
    for name, enhance in PEERS.items():                 # the tools people use today (issue 17)
        methods[name] = lambda noisy, task, seed, enhance=enhance: (enhance(noisy, SAMPLE_RATE), 0)
    available = enhancer.methods
    if "predictive" in available:
        methods["predictive"] = model("predictive", 1)
    if "sgmse" in available:
        methods["SGMSE+ PC 30"] = model("sgmse", 30)
    if "storm" in available:
        for n in storm_steps:
            methods[f"StoRM {n} steps"] = model("storm", n)
        if "DeepFilterNet 3" in PEERS:                 # issue 17's storm-dfn experiment: StoRM from DFN3's estimate
            methods["StoRM 1 step on DFN3"] = storm_on_peer(enhancer, PEERS["DeepFilterNet 3"])
    if "onestep" in available:
        for n in onestep_steps:
            methods[f"consistency {n} step{'s' if n > 1 else ''}"] = model("onestep", n)
    return methods


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    enhancer = SpeechEnhancer.from_pretrained(args.weights, device=args.device, torch_dtype=args.dtype)
    synthetic = tuple(c for c in args.conditions if c != "natural")
    clips = validation_clips(args.clips, synthetic) if synthetic else []
    if "natural" in args.conditions:
        clips += validation_clips(args.natural_clips, ("natural",))
    methods = build_methods(enhancer, args.storm_steps, args.onestep_steps)
    if args.methods:                                    # the noisy input stays: every gain is measured from it
        unknown = set(args.methods) - set(methods)
        if unknown:
            raise SystemExit(f"unknown methods {sorted(unknown)}; available: {', '.join(methods)}")
        methods = {k: v for k, v in methods.items() if k in args.methods or k == "noisy input"}
    rows = []
    for name, fn in methods.items():
        fn(clips[0]["noisy"], clips[0]["task"], 0)  # warm-up
        # Enhance every clip back to back, score afterwards: PESQ/ESTOI between timed calls evict the
        # caches and idle the thread pool (+50 % on the next call, measured).
        timed = []
        for i, clip in enumerate(clips):
            start = time.perf_counter()
            out, nfe = fn(clip["noisy"], clip["task"], i)
            timed.append((out, nfe, time.perf_counter() - start))
        for clip, (out, nfe, seconds) in zip(clips, timed):
            scores = all_metrics(out, clip["clean"])
            rows.append({"method": name, "clip": clip["name"], "condition": clip["condition"], **scores, "nfe": nfe,
                         "rtf": seconds / (len(clip["noisy"]) / SAMPLE_RATE)})
        print(f"{name:22s} " + "  ".join(
            f"{c}: PESQ {np.mean([r['pesq'] for r in rows if r['method'] == name and r['condition'] == c]):.2f}"
            for c in args.conditions), flush=True)
    return {"rows": rows, "summary": summarise(rows),
            "setup": {"dtype": args.dtype, "threads": args.threads, "device": args.device, "clips_per_condition": args.clips,
                      "natural_clips": args.natural_clips,
                      "cpu": platform.processor() or platform.machine(), "torch": torch.__version__}}


def summarise(rows: list[dict]) -> dict:
    """Mean per (group, method); groups are each condition plus ``noisy`` (0-10 dB pooled)."""
    out: dict = {}
    groups = {c: [c] for c in CONDITIONS} | {"noisy": list(NOISY_CONDITIONS)}
    for group, conds in groups.items():
        sel = [r for r in rows if r["condition"] in conds]
        for m in dict.fromkeys(r["method"] for r in sel):
            rs = [r for r in sel if r["method"] == m]
            out.setdefault(group, {})[m] = {k: float(np.mean([r[k] for r in rs])) for k in ("pesq", "estoi", "si_sdr", "nfe", "rtf")}
    return out


#: The benchmark rows of the one-evaluation methods, the default first; every "one-step" target is checked on
#: each of them, named in its label.
_ROW_OF_METHOD = {"predictive": "predictive", "onestep": "consistency 1 step"}
ONE_STEP_ROWS = sorted(_ROW_OF_METHOD.values(), key=lambda row: row != _ROW_OF_METHOD[DEFAULT_METHOD])


def check_targets(summary: dict) -> dict:
    """The speech targets, for each one-evaluation row (:data:`ONE_STEP_ROWS`): the first version's on the
    pooled synthetic-voice noisy clips, issue 17's on the natural condition (>= DeepFilterNet 3 in PESQ and
    SI-SDR at no more real time) and on the reverberant clips (SI-SDR gain >= 5 dB); and issue 17's 2 and 4
    consistency steps better than 1 on the natural condition."""
    t: dict = {}
    s, n, r = summary.get("noisy", {}), summary.get("natural", {}), summary.get("reverb", {})
    for row in ONE_STEP_ROWS:
        one = s.get(row)
        if one is not None:
            gain = one["si_sdr"] - s["noisy input"]["si_sdr"]
            t[f"{row}: SI-SDR >= noisy + 8 dB"] = _verdict(gain, gain >= 8)
            if "noisereduce" in s:
                gain = one["pesq"] - s["noisereduce"]["pesq"]
                t[f"{row}: PESQ >= noisereduce + 0.4"] = _verdict(gain, gain >= 0.4)
            t[f"{row}: real-time factor <= 0.05"] = _verdict(one["rtf"], one["rtf"] <= 0.05)
            if "SGMSE+ PC 30" in s:
                gap = one["pesq"] - s["SGMSE+ PC 30"]["pesq"]
                t[f"{row}: within 0.1 PESQ of SGMSE+ PC 30"] = _verdict(gap, gap >= -0.1)
        one, dfn = n.get(row), n.get("DeepFilterNet 3")
        if one is not None and dfn is not None:              # issue 17's targets
            for key, label in (("pesq", "PESQ"), ("si_sdr", "SI-SDR")):
                gap = one[key] - dfn[key]
                t[f"natural: {row} {label} >= DeepFilterNet 3's"] = _verdict(gap, gap >= 0)
            ratio = one["rtf"] / dfn["rtf"]
            t[f"natural: {row} real-time factor <= DeepFilterNet 3's"] = _verdict(ratio, ratio <= 1)
        if row in r:
            gain = r[row]["si_sdr"] - r["noisy input"]["si_sdr"]
            t[f"reverb: {row} SI-SDR gain >= 5 dB"] = _verdict(gain, gain >= 5)
    one = n.get("consistency 1 step")
    for steps in (2, 4):
        multi = n.get(f"consistency {steps} steps")
        if one is not None and multi is not None:
            gain = multi["pesq"] - one["pesq"]
            t[f"natural: consistency {steps} steps PESQ > 1 step's"] = _verdict(gain, gain > 0)
    return t


def _verdict(value: float, passed: bool) -> dict:
    return {"value": float(value), "pass": bool(passed)}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"natural": "recorded voice in recorded noise, 0-10 dB", "noisy": "synthesised voices, 0-10 dB SNR",
              "reverb": "reverberant input"}
    groups = [g for g in titles if g in result["summary"]]
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(6 * (len(groups) + 1), 4.5), squeeze=False)
    axes = axes[0]
    for ax, group in zip(axes, groups):
        for m, v in result["summary"][group].items():
            ax.scatter(max(v["nfe"], 0.5), v["pesq"], s=40)
            ax.annotate(m, (max(v["nfe"], 0.5), v["pesq"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (0 plotted at 0.5)")
        ax.set_ylabel("PESQ (wide-band)")
        ax.set_title(titles[group])
        ax.grid(alpha=0.3)
    ax = axes[-1]
    s = result["summary"][groups[0]]
    names = list(s)
    ax.barh(names, [max(s[m]["rtf"], 1e-4) for m in names])
    ax.axvline(0.05, color="k", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(f"real-time factor ({result['setup']['threads']} CPU threads)")
    ax.set_title("speed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.audio.benchmark_se", __doc__)
    p.add_argument("--weights", default=None, help="audio weights folder (default: shipped)")
    p.add_argument("--clips", type=int, default=8, help="clips per synthetic-voice condition")
    p.add_argument("--natural-clips", type=int, default=16, help="clips of the natural condition")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--storm-steps", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--onestep-steps", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--methods", nargs="+", default=None,
                   help="only these rows (names as printed, e.g. predictive 'consistency 2 steps'); the noisy input always runs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="model dtype (see experiments/dtype_check.py for the speed/quality trade-off)")
    p.add_argument("--out", default=str(RESULTS / "se_benchmark"))
    args = p.parse_args(argv)
    result = run(args)
    result["targets"] = check_targets(result["summary"])
    paths = write_results(result, args.out, plot)
    for group, d in result["summary"].items():
        print(f"\n{group}")
        print(f"{'method':22s} {'PESQ':>5s} {'ESTOI':>6s} {'SI-SDR':>7s} {'NFE':>4s} {'RTF':>7s}")
        for m, v in d.items():
            print(f"{m:22s} {v['pesq']:5.2f} {v['estoi']:6.3f} {v['si_sdr']:7.2f} {v['nfe']:4.0f} {v['rtf']:7.4f}")
    print_targets(result["targets"], paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

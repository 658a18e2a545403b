"""Where the dereverberation SI-SDR is lost: the validation rooms with their impulse responses cut short.

    python -m experiments.audio.reverb_oracle          # writes results/reverb_oracle.{json,png}

The dereverberation target is the dry utterance, aligned with the room's direct path (:mod:`audio.noise`). For
every validation room (T60 0.2-1.0 s) and a random validation utterance, this scores against the dry signal:

* the reverberant input (the full impulse response, plus the benchmark's faint coloured noise);
* oracle signals that keep only the first ``tau`` ms of the impulse response (``h_tau[n] = h[n]`` for
  ``n <= tau fs``, else 0): what a perfect removal of every reflection later than ``tau`` would leave;
* the predictive model's estimate from the reverberant input (one evaluation, the default method).

Comparing the model's SI-SDR with the oracles says which reflections it removes; the benchmark's +5 dB target
(``experiments.audio.benchmark_se``) is drawn on the plot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audio.data import load_degrader
from audio.enhancer import SpeechEnhancer
from audio.metrics import si_sdr
from audio.noise import reverberate
from audio.spectral import SAMPLE_RATE

from ..report import finish_axes, run_script, script_parser

RESULTS = Path(__file__).parent / "results"
CUTS_MS = (2, 5, 10, 20, 50, 100)
TARGET_GAIN_DB = 5.0     # issue 17: dereverberation SI-SDR gain >= +5 dB


def truncate_rir(rir: np.ndarray, ms: float) -> np.ndarray:
    """``h_tau``: the impulse response with every sample after ``ms`` milliseconds set to zero."""
    out = rir.copy()
    out[int(round(ms * SAMPLE_RATE / 1000)) + 1:] = 0.0
    return out


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    degrader = load_degrader("validation", 300, args.rooms)
    enhancer = SpeechEnhancer.from_pretrained(args.weights)
    rng = np.random.default_rng(args.seed)
    rows = []
    for k, rir in enumerate(degrader.rirs):
        clean = degrader.corpus[int(rng.integers(len(degrader.corpus)))] * 0.5
        wet = degrader.reverberant(clean, rir, rng)
        estimate = enhancer(wet.astype(np.float32), SAMPLE_RATE, task="dereverb", method="predictive")
        row = {"room": k, "input": si_sdr(wet, clean), "predictive": si_sdr(estimate, clean)}
        row.update({f"first {ms} ms": si_sdr(reverberate(clean, truncate_rir(rir, ms)), clean) for ms in CUTS_MS})
        rows.append(row)
    keys = [k for k in rows[0] if k != "room"]
    return {"rows": rows, "mean_si_sdr": {k: float(np.mean([r[k] for r in rows])) for k in keys},
            "setup": {"rooms": len(rows), "seed": args.seed, "threads": args.threads}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = result["mean_si_sdr"]
    ax = plt.subplots(figsize=(6.5, 4))[1]
    ax.plot(CUTS_MS, [mean[f"first {ms} ms"] for ms in CUTS_MS], "o-", label="oracle: reflections after τ removed")
    ax.axhline(mean["input"], color="grey", ls=":", label=f"reverberant input ({mean['input']:.2f} dB)")
    ax.axhline(mean["predictive"], color="C1", label=f"predictive model ({mean['predictive']:.2f} dB)")
    ax.axhline(mean["input"] + TARGET_GAIN_DB, color="C3", ls="--", label=f"target: input + {TARGET_GAIN_DB:.0f} dB")
    ax.set_xscale("log")
    finish_axes(ax, path, "τ: impulse response kept up to (ms)", "SI-SDR against the dry speech (dB)",
                f"Dereverberation, {result['setup']['rooms']} validation rooms")


def main(argv=None) -> int:
    p = script_parser("python -m experiments.audio.reverb_oracle", __doc__)
    p.add_argument("--weights", default=None, help="audio weights folder (default: shipped)")
    p.add_argument("--rooms", type=int, default=40, help="validation rooms (the benchmark draws from 40)")
    p.add_argument("--seed", type=int, default=5, help="seed of the utterances and the faint noise")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "reverb_oracle"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

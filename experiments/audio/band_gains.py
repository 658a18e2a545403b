"""How loud each method leaves the speech, band by band: the over-suppression check of issue 17.

    python -m experiments.audio.band_gains          # writes results/band_gains.{json,png}

On the benchmark's natural condition (the held-out recorded voice in recorded validation noise,
:func:`audio.data.validation_clips`), for each method and frequency band ``B``, the level of the output
against the clean speech in the speech frames (512-sample Hann-windowed frames within 25 dB of the clip's
loudest)::

    gain_B = 10 log10( sum_{frames, f in B} |Y(f)|^2 / sum_{frames, f in B} |S(f)|^2 )

0 dB: the speech keeps its level; below 0: the method removes speech with the noise (a regression model trained
with the complex MSE shrinks magnitudes where the phase is uncertain); above 0: noise is left. Methods: the
noisy input, DeepFilterNet 3 (the peer) and the predictive model of each ``--weights`` folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from audio.data import validation_clips
from audio.enhancer import SpeechEnhancer
from audio.spectral import SAMPLE_RATE

from ..report import finish_axes, run_script, script_parser

RESULTS = Path(__file__).parent / "results"
BANDS_HZ = ((0, 1000), (1000, 3000), (3000, 5000), (5000, 7000), (7000, 8000))
FRAME = 512
SPEECH_WITHIN_DB = 25.0


def band_gains(estimate: np.ndarray, clean: np.ndarray) -> list[float]:
    """``gain_B`` in dB for each band of :data:`BANDS_HZ` over the speech frames of ``clean``."""
    n = len(clean) // FRAME * FRAME
    frames = clean[:n].reshape(-1, FRAME)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    speech = level > level.max() - SPEECH_WITHIN_DB
    f = np.fft.rfftfreq(FRAME, 1 / SAMPLE_RATE)
    window = np.hanning(FRAME)
    power = {name: np.abs(np.fft.rfft(window * x[:n].reshape(-1, FRAME)[speech], axis=1)) ** 2
             for name, x in (("estimate", estimate), ("clean", clean))}
    return [float(10 * np.log10(power["estimate"][:, (f >= lo) & (f < hi)].sum()
                                / power["clean"][:, (f >= lo) & (f < hi)].sum())) for lo, hi in BANDS_HZ]


def run(args) -> dict:
    from .peers import PEERS

    torch.set_num_threads(args.threads)
    clips = validation_clips(args.clips, ("natural",))
    methods = {"noisy input": lambda x: x}
    if "DeepFilterNet 3" in PEERS:
        methods["DeepFilterNet 3"] = lambda x: PEERS["DeepFilterNet 3"](x, SAMPLE_RATE)
    labels = args.labels or ["predictive" if w is None else f"predictive ({w})" for w in args.weights]
    if len(labels) != len(args.weights):
        raise SystemExit(f"--labels: {len(labels)} labels for {len(args.weights)} weights folders")
    for folder, label in zip(args.weights, labels):
        enhancer = SpeechEnhancer.from_pretrained(folder)
        methods[label] = lambda x, enhancer=enhancer: enhancer(x, SAMPLE_RATE, method="predictive")
    gains = {name: np.mean([band_gains(fn(c["noisy"]), c["clean"]) for c in clips], axis=0).tolist()
             for name, fn in methods.items()}
    return {"bands_hz": BANDS_HZ, "gain_db": gains, "setup": {"clips": len(clips), "threads": args.threads}}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{lo / 1000:g}-{hi / 1000:g}" for lo, hi in result["bands_hz"]]
    ax = plt.subplots(figsize=(7, 4))[1]
    width = 0.8 / len(result["gain_db"])
    for k, (name, gains) in enumerate(result["gain_db"].items()):
        ax.bar(np.arange(len(labels)) + k * width, gains, width, label=name)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(labels)) + width * (len(result["gain_db"]) - 1) / 2, labels)
    finish_axes(ax, path, "band (kHz)", "output / clean speech level (dB)",
                f"Speech level per band, natural condition ({result['setup']['clips']} clips)", legend_size=7)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.audio.band_gains", __doc__)
    p.add_argument("--weights", nargs="+", default=[None], help="audio weights folders (default: shipped)")
    p.add_argument("--labels", nargs="+", default=None, help="a plot label per weights folder")
    p.add_argument("--clips", type=int, default=16, help="clips of the natural condition (the benchmark's 16)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS / "band_gains"))
    return run_script(p, run, plot, argv)


if __name__ == "__main__":
    raise SystemExit(main())

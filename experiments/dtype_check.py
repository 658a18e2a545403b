"""Speed and quality of the shipped one-step models in float32, bfloat16 and float16, side by side.

    python -m experiments.dtype_check            # writes experiments/results/dtype_check.{json,png}

Super-resolution: the demo photo (``restore/samples/butterfly.jpg``, validation split) reduced x4
by bicubic down-sampling, restored by the one-step student (whole image, no tiling); PSNR-Y
against the original, and against the float32 output. Speech: a synthetic sentence (espeak-ng,
a validation voice) in coloured noise at 5 dB, enhanced by the one-step consistency model; SI-SDR
and PESQ-WB against the clean speech, and SI-SDR against the float32 output. Seconds are the best
of ``--repeats`` calls after a warm-up, at ``--threads`` threads. The pipelines cast their weights
and inputs to the dtype (diffusers' ``torch_dtype``); float32 is the default unless another dtype
is faster here with the same quality.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import torch

from .report import save_figure, script_parser, write_results

RESULTS = Path(__file__).parent / "results"
DTYPES = ("float32", "bfloat16", "float16")


def best_seconds(fn, repeats: int):
    """``(output, best seconds)`` of ``repeats`` calls after one warm-up call."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def super_resolution(dtypes, device: str, repeats: int) -> dict:
    from restore.sr.degradations import bicubic_down
    from restore.sr.demo import SAMPLE
    from restore.sr.images import read_image
    from restore.sr.metrics import psnr_y
    from restore.sr.pipeline import SuperResolutionPipeline

    hr = read_image(SAMPLE).rgb
    hr = hr[:, : hr.shape[1] // 4 * 4, : hr.shape[2] // 4 * 4]
    lr = bicubic_down(hr, 4).clamp(0, 1)
    rows, reference = {}, None
    for name in dtypes:
        pipe = SuperResolutionPipeline.from_pretrained(device=device, torch_dtype=name)
        out, seconds = best_seconds(lambda: pipe(lr, tile=0), repeats)
        reference = out if reference is None else reference
        rows[name] = {"seconds": seconds, "psnr_y": psnr_y(out, hr), "psnr_y_vs_float32": psnr_y(out, reference)}
        print(f"SR      {name:9s} {seconds:7.3f} s  PSNR-Y {rows[name]['psnr_y']:.2f} dB", flush=True)
    return {"input": f"{SAMPLE.name}, {lr.shape[2]}x{lr.shape[1]} -> x4", "rows": rows}


def speech(dtypes, device: str, repeats: int) -> dict:
    from audio.corpus import synthesize, voice_catalogue
    from audio.enhancer import SpeechEnhancer
    from audio.metrics import pesq_wb, si_sdr
    from audio.noise import coloured_noise, mix_at_snr

    voice = voice_catalogue("validation")[0]
    clean = synthesize(voice, "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background.",
                       160, 50)
    clean = (0.5 * clean / np.abs(clean).max()).astype(np.float32)
    noisy = mix_at_snr(clean, coloured_noise(len(clean), 1.0, np.random.default_rng(0)), 5.0).astype(np.float32)
    rows, reference = {}, None
    for name in dtypes:
        enhancer = SpeechEnhancer.from_pretrained(device=device, torch_dtype=name)
        out, seconds = best_seconds(lambda: enhancer(noisy, 16000, method="onestep"), repeats)
        reference = out if reference is None else reference
        rows[name] = {"seconds": seconds, "rtf": seconds / (len(noisy) / 16000), "si_sdr": si_sdr(out, clean),
                      "pesq_wb": pesq_wb(out, clean), "si_sdr_vs_float32": si_sdr(out, reference)}
        print(f"speech  {name:9s} {seconds:7.3f} s  SI-SDR {rows[name]['si_sdr']:.2f} dB  "
              f"PESQ {rows[name]['pesq_wb']:.2f}", flush=True)
    return {"input": f"{voice.engine} {voice.name}, {len(noisy) / 16000:.1f} s, coloured noise at 5 dB",
            "noisy": {"si_sdr": si_sdr(noisy, clean), "pesq_wb": pesq_wb(noisy, clean)}, "rows": rows}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, (task, key, label) in zip(axes, [("super_resolution", "psnr_y", "PSNR-Y (dB)"),
                                             ("speech", "si_sdr", "SI-SDR (dB)")]):
        rows = result[task]["rows"]
        names = list(rows)
        secs = [rows[n]["seconds"] for n in names]
        ax.barh(names, secs, color=["#4c72b0", "#dd8452", "#55a868"][: len(names)])
        for i, n in enumerate(names):
            ax.text(secs[i], i, f"  {rows[n][key]:.2f} {label.split()[0]}", va="center")
        ax.set_xscale("log")
        ax.set_xlabel(f"seconds per call, log scale ({result['setup']['threads']} threads)")
        ax.set_title(f"{task.replace('_', ' ')}: one-step model")
    fig.suptitle(f"dtype trade-off on {result['setup']['cpu']}", fontsize=9)
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.dtype_check", __doc__)
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(RESULTS / "dtype_check"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    result = {"setup": {"threads": args.threads, "device": args.device, "repeats": args.repeats,
                        "cpu": platform.processor() or platform.machine(),
                        "avx512_bf16": " avx512_bf16" in flags, "amx_bf16": " amx_bf16" in flags,
                        "torch": torch.__version__},
              "super_resolution": super_resolution(args.dtypes, args.device, args.repeats),
              "speech": speech(args.dtypes, args.device, args.repeats)}
    paths = write_results(result, args.out, plot)
    print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

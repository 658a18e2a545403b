"""Peak memory of both pipelines against input size (issue 12's memory bound), one process per case.

    python -m experiments.memory                      # writes experiments/results/memory.{json,png}

Each API case runs in a fresh Python process: load the shipped default model, reset the kernel's
high-water mark (``/proc/self/clear_refs``), run once on one default tile (128^2 pixels) or chunk
(4 s): that peak, the model plus one part's work, is the baseline; then run on the case's input
with the default tiling and read ``VmHWM``. The growth over the baseline is what the input size
costs. Super-resolution: random uint8 RGB inputs of ``--sr-sizes`` pixels a side (x4 outputs).
Speech API: ``--speech-minutes`` of 16 kHz float32 noise-like speech stand-in (memory does not
depend on the content); its output array grows with the input, by design. Speech CLI:
``python -m audio.enhance`` on a 16-bit WAV of ``--cli-minutes`` (file in, file out), whole-process
peak RSS: the target is flat within 10 % from 1 to 30 minutes. Linux only (``/proc``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .report import save_figure, script_parser, write_results

RESULTS = Path(__file__).parent / "results"

CASE = r"""
import json, sys, numpy as np, torch
from pathlib import Path
torch.set_num_threads({threads})

def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

def reset():
    Path("/proc/self/clear_refs").write_text("5")

kind, size = "{kind}", {size}
rng = np.random.default_rng(0)
if kind == "sr":
    from restore import SuperResolutionPipeline
    pipe = SuperResolutionPipeline.from_pretrained(device="cpu")
    x = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    reset(); pipe(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)); base = hwm()   # model + one default tile
    out = pipe(x)
    units = out.shape[0] * out.shape[1]
else:
    from audio import SpeechEnhancer
    enh = SpeechEnhancer.from_pretrained(device="cpu")
    x = (0.1 * rng.standard_normal(int(size * 60 * 16000))).astype(np.float32)
    reset(); enh(x[:4 * 16000], 16000); base = hwm()   # model + one default chunk
    out = enh(x, 16000)
    units = size * 60
print(json.dumps({{"base": base, "peak": hwm(), "units": units, "input_bytes": x.nbytes, "output_bytes": out.nbytes}}))
"""


CLI = r"""
import json, sys, torch
from pathlib import Path
torch.set_num_threads({threads})
from audio.enhance import main
code = main([{source!r}, "-o", {target!r}, "--quiet", "--device", "cpu"])
peak = [l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")][0]
print(json.dumps({{"code": code, "peak": int(peak.split()[1]) * 1024}}))
"""


def write_noise_wav(path: Path, minutes: float, rate: int = 16000) -> None:
    """``minutes`` of 16-bit noise-like speech stand-in, written block by block."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        left = int(minutes * 60 * rate)
        while left:
            n = min(left, 60 * rate)
            f.write((0.1 * rng.standard_normal(n)).astype("float32"))
            left -= n


def run_cli_case(minutes: float, threads: int, folder: Path) -> dict:
    """Whole-process peak RSS of ``python -m audio.enhance`` on a ``minutes``-long WAV file."""
    source, target = folder / f"in_{minutes:g}.wav", folder / f"out_{minutes:g}.wav"
    write_noise_wav(source, minutes)
    code = CLI.format(threads=threads, source=str(source), target=str(target))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=7200)
    source.unlink()
    target.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"speech CLI {minutes} min: {done.stderr.strip().splitlines()[-1]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    return {"minutes": minutes, "peak": r["peak"], "peak_mb": r["peak"] / 2**20}


def run_case(kind: str, size: float, threads: int) -> dict:
    code = CASE.format(kind=kind, size=size, threads=threads)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {size}: {done.stderr.strip().splitlines()[-1]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    r["growth_mb"] = (r["peak"] - r["base"]) / 2**20
    return r


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    sr, sp, cli = result["super_resolution"], result["speech"], result["speech_cli"]
    mpx = [r["units"] / 1e6 for r in sr]
    axes[0].plot(mpx, [r["growth_mb"] for r in sr], "o-", label="measured")
    axes[0].plot([0] + mpx, [0] + [12 * m * 1e6 / 2**20 for m in mpx], "--", color="grey",
                 label="target: 12 bytes per output pixel")
    axes[0].set_xlabel("output megapixels")
    axes[0].set_ylabel("peak RSS growth over model + one part (MB)")
    axes[0].set_title("super-resolution API (uint8 RGB, default tiling)")
    axes[0].legend()
    axes[1].plot([r["units"] / 60 for r in sp], [r["growth_mb"] for r in sp], "o-")
    axes[1].set_ylim(0, 1.2 * max([r["growth_mb"] for r in sp], default=1))
    axes[1].set_xlabel("minutes of audio")
    axes[1].set_title("speech API (array in, array out)")
    axes[2].plot([r["minutes"] for r in cli], [r["peak_mb"] for r in cli], "o-", label="measured")
    if cli:
        first = cli[0]["peak_mb"]
        axes[2].axhspan(first, 1.1 * first, color="grey", alpha=0.2, label="target: within 10 %")
    axes[2].set_ylim(0, 1.3 * max([r["peak_mb"] for r in cli], default=1))
    axes[2].set_xlabel("minutes of audio")
    axes[2].set_ylabel("whole-process peak RSS (MB)")
    axes[2].set_title("speech CLI (file in, file out)")
    axes[2].legend(loc="lower right")
    save_figure(fig, path)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.memory", __doc__)
    p.add_argument("--sr-sizes", nargs="*", type=int, default=[256, 512, 1024])
    p.add_argument("--speech-minutes", nargs="*", type=float, default=[1, 10])
    p.add_argument("--cli-minutes", nargs="*", type=float, default=[1, 5, 10, 30])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "memory"))
    args = p.parse_args(argv)
    result = {"super_resolution": [], "speech": [], "speech_cli": [], "setup": {"threads": args.threads}}
    for size in args.sr_sizes:
        r = run_case("sr", size, args.threads)
        result["super_resolution"].append(r)
        print(f"SR      {size}^2 -> {4 * size}^2: +{r['growth_mb']:.0f} MB, "
              f"{(r['peak'] - r['base']) / r['units']:.1f} bytes per output pixel", flush=True)
    for minutes in args.speech_minutes:
        r = run_case("speech", minutes, args.threads)
        result["speech"].append(r)
        print(f"speech  {minutes:g} min: +{r['growth_mb']:.0f} MB, "
              f"{r['growth_mb'] / (minutes * 60):.2f} MB per second", flush=True)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        for minutes in args.cli_minutes:
            r = run_cli_case(minutes, args.threads, Path(folder))
            result["speech_cli"].append(r)
            first = result["speech_cli"][0]["peak"]
            print(f"speech CLI {minutes:g} min: peak {r['peak_mb']:.0f} MB ({100 * (r['peak'] / first - 1):+.1f} % "
                  f"against {result['speech_cli'][0]['minutes']:g} min)", flush=True)
    paths = write_results(result, args.out, plot)
    print(f"\nwrote {paths[0]} and {paths[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

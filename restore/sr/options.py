"""Choices of the super-resolution command and pipeline, in a module that imports nothing heavy.

The command line builds its parser from these before torch is imported, so ``--help`` and
argument errors answer at once; :mod:`restore.sr.images`, :mod:`restore.sr.colorfix` and
:mod:`restore.sr.pipeline` take them from here.
"""

#: Image files read and written (OpenCV; 8/16-bit PNG and TIFF, JPEG, BMP, WebP).
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
#: Colour corrections against the input (:func:`restore.sr.colorfix.color_fix`).
COLOR_FIXES = ("none", "adain", "wavelet")
DEFAULT_COLOR_FIX = "adain"
#: Range of the one-step blend weights ``pix`` and ``detail`` (PiSA-SR's output blend).
BLEND_RANGE = (0.0, 2.0)
DEFAULT_TILE, DEFAULT_OVERLAP = 128, 16


def check_blend(pix: float, detail: float) -> None:
    """``InputError`` unless both blend weights are finite and within :data:`BLEND_RANGE`."""
    from shared.files import InputError

    lo, hi = BLEND_RANGE
    for name, value in (("pix", pix), ("detail", detail)):
        if not lo <= float(value) <= hi:   # NaN fails too
            raise InputError(f"{name} must be in [{lo:g}, {hi:g}], got {value}")


def tile_settings(tile, overlap) -> tuple:
    """``(tile or None, overlap)`` with the defaults filled in; ``InputError`` for impossible values."""
    from shared.files import InputError

    tile = DEFAULT_TILE if tile is None else int(tile)
    if tile < 0:
        raise InputError(f"tile must be >= 0 (0 disables tiling), got {tile}")
    overlap = min(DEFAULT_OVERLAP, tile // 4) if overlap is None else int(overlap)
    if tile and not 0 <= overlap < tile:
        raise InputError(f"tile_overlap must be in [0, tile), got {overlap} for tile {tile}")
    return (tile or None), overlap

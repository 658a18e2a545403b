"""Choices of the super-resolution command and pipeline, in a module that imports nothing heavy.

The command line builds its parser from these before torch is imported, so ``--help`` and
argument errors answer at once; :mod:`restore.sr.images`, :mod:`restore.sr.colorfix` and
:mod:`restore.sr.pipeline` take them from here.
"""

#: Image files read and written (OpenCV; 8/16-bit PNG and TIFF, JPEG, BMP, WebP).
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
#: Colour corrections against the input (:func:`restore.sr.colorfix.color_fix`).
COLOR_FIXES = ("none", "adain", "wavelet")
#: The default: none. Measured on the validation photos (issue 17), a fix does not help these L2-trained models:
#: ``adain`` matches the output's contrast to the input's, which a noisy input inflates (realistic degradation,
#: one-step: 0.09 dB PSNR-Y below ``none``); ``wavelet`` equals ``none`` within 0.01 dB but doubles peak memory.
DEFAULT_COLOR_FIX = "none"
#: Range of the one-step blend weights ``pix`` and ``detail`` (PiSA-SR's output blend).
BLEND_RANGE = (0.0, 2.0)
#: Default blend: the pixel (fidelity) adapter alone, one merged evaluation. The detail adapter
#: (``detail=1``, also one evaluation) lowered PSNR-Y and SSIM-Y on every benchmark degradation
#: (issue 17; README), so it is opt-in.
DEFAULT_PIX, DEFAULT_DETAIL = 1.0, 0.0
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


def resolve_mode(one_step, steps, deterministic: bool = False, num_inference_steps=None) -> tuple:
    """``(one_step, steps)`` the pipeline runs, from the API's or the command line's arguments;
    :class:`InputError` for a combination that cannot mean one thing.

    The one-step student runs unless teacher steps are asked for: ``steps`` (or its newer name
    ``num_inference_steps``), ``deterministic`` (the teacher's deterministic sampler, all T steps
    unless ``steps`` says otherwise) or ``one_step=False`` (the teacher, T steps). ``one_step=None``
    means "not said".
    """
    from shared.files import InputError

    if num_inference_steps is not None and steps is not None and num_inference_steps != steps:
        raise InputError("give num_inference_steps or steps, not both")
    steps = num_inference_steps if num_inference_steps is not None else steps
    if one_step is None:
        one_step = steps is None and not deterministic
    elif one_step and (steps is not None or deterministic):
        raise InputError("one_step=True takes no steps and no deterministic sampler (those are the teacher's)")
    return bool(one_step), steps

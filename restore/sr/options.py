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

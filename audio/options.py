"""Choices of the speech-enhancement command and pipeline, in a module that imports nothing heavy.

The command line builds its parser from these before torch is imported, so ``--help`` and
argument errors answer at once; :mod:`audio.enhancer`, :mod:`audio.data` and
:mod:`audio.audiofile` take them from here.
"""

#: Conditioning tasks, in the order of the task plane's value (0 denoise, 1 dereverb).
TASKS = ("denoise", "dereverb")
METHODS = ("onestep", "storm", "sgmse", "predictive")
#: The method used when none is named: the one-pass predictive model, the best single network evaluation of
#: the shipped models on every benchmark condition but reverberant SI-SDR (README, speech benchmark).
DEFAULT_METHOD = "predictive"
DEFAULT_STEPS = {"onestep": 1, "storm": 1, "sgmse": 30, "predictive": 1}

#: Audio file extensions the command reads and writes -> (libsndfile format, forced subtype or None).
#: With no forced subtype the output keeps the input's sample format where the format can hold it.
FORMATS = {
    ".wav": ("WAV", None),
    ".flac": ("FLAC", None),
    ".ogg": ("OGG", None),
    ".opus": ("OGG", "OPUS"),
    ".mp3": ("MP3", None),
    ".aiff": ("AIFF", None),
    ".aif": ("AIFF", None),
}
EXTENSIONS = tuple(FORMATS)

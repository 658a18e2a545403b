"""Speech enhancement and dereverberation on the shared diffusion core.

``python -m audio.enhance INPUT -o OUTPUT`` on the command line, or::

    from audio import SpeechEnhancer
    enhancer = SpeechEnhancer.from_pretrained()
    clean = enhancer(noisy, sample_rate)

``SpeechEnhancer`` is imported on first use, so the command line answers ``--help`` and argument
errors without loading torch.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .enhancer import SpeechEnhancer

__all__ = ["SpeechEnhancer"]


def __getattr__(name: str):
    """Import ``SpeechEnhancer`` (torch, torchaudio, diffusers) only when it is asked for."""
    if name == "SpeechEnhancer":
        from .enhancer import SpeechEnhancer

        return SpeechEnhancer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

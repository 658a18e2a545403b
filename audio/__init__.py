"""Speech enhancement and dereverberation on the shared diffusion core.

``python -m audio.enhance INPUT -o OUTPUT`` on the command line, or::

    from audio import SpeechEnhancer
    enhancer = SpeechEnhancer.from_pretrained()
    clean = enhancer(noisy, sample_rate)

``SpeechEnhancer`` is imported on first use, so the command line answers ``--help`` and argument
errors without loading torch.
"""

from typing import TYPE_CHECKING

from shared.lazy import lazy_attributes

if TYPE_CHECKING:
    from .enhancer import SpeechEnhancer

__all__ = ["SpeechEnhancer"]
__getattr__ = lazy_attributes(__name__, {"SpeechEnhancer": ".enhancer"})

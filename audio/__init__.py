"""Speech enhancement and dereverberation on the shared diffusion core.

``python -m audio.enhance INPUT -o OUTPUT`` on the command line, or::

    from audio import SpeechEnhancer
    enhancer = SpeechEnhancer.from_pretrained()
    clean = enhancer(noisy, sample_rate)
"""

from .enhancer import SpeechEnhancer

__all__ = ["SpeechEnhancer"]

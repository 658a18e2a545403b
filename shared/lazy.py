"""Lazy package attributes: a vertical's ``__init__`` names its public classes without importing
torch, so its command line answers ``--help`` and argument errors at once."""

from __future__ import annotations

import importlib
from typing import Callable


def lazy_attributes(package: str, attributes: dict[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``attributes[name]`` (a module path relative to
    ``package``) on first access of ``name`` and returns ``name`` from it."""

    def __getattr__(name: str):
        if name not in attributes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(attributes[name], package), name)

    return __getattr__

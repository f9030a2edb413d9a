"""Generators: turn a prepared target and driven landmarks into an avatar frame.

Resolved by name on use, so choosing `warp` never imports torch (the neural generator's dependency).
"""

from __future__ import annotations

import importlib

from models.generators.base import Generator

_GENERATORS = {
    "mesh": "models.generators.mesh:MeshGenerator",
    "warp": "models.generators.warp:WarpGenerator",
    "passthrough": "models.generators.passthrough:PassthroughGenerator",
    "still": "models.generators.still:StillGenerator",
    "marionette": "models.generators.marionette:MarioNETteGenerator",
}
GENERATOR_NAMES = tuple(_GENERATORS)


def generator_class(name: str) -> type[Generator]:
    if name not in _GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose from {', '.join(GENERATOR_NAMES)}")
    module, _, attribute = _GENERATORS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


__all__ = ["GENERATOR_NAMES", "Generator", "generator_class"]

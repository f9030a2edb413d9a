"""Generators: turn a prepared target and driven landmarks into an avatar frame."""

from __future__ import annotations

from models.generators.base import Generator
from models.generators.marionette import MarioNETteGenerator
from models.generators.passthrough import PassthroughGenerator
from models.generators.still import StillGenerator
from models.generators.warp import WarpGenerator

GENERATORS: dict[str, type[Generator]] = {
    "warp": WarpGenerator, "passthrough": PassthroughGenerator, "marionette": MarioNETteGenerator,
    "still": StillGenerator,
}

__all__ = ["GENERATORS", "Generator"]

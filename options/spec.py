"""Option fields: a dataclass field that carries its help, choices and bounds, and the checks they imply.

Every field of an `Options` dataclass is declared with `option(...)`; its annotation gives the value type
(`Literal[...]` gives the choices, `X | None` means "none" is allowed, `tuple[X, ...]` takes several).
Command-line flags, environment variables and info dicts are derived from these fields (see options.cli).
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

_KEY = "option"
T = TypeVar("T")


class OptionError(ValueError):
    """A bad option value; `name` is the field, so a command line can name its flag or variable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Spec:
    help: str
    choices: tuple[Any, ...] | None = None  # when not given by a Literal annotation
    low: float | None = None  # inclusive bounds of a number
    high: float | None = None
    even: bool = False
    flag: str | None = None  # the flag when it is not --<field-name>, e.g. --target for `targets`
    aliases: tuple[str, ...] = ()  # extra flags accepted for the same option
    repeat: bool = False  # tuple fields: the flag is given once per item (otherwise comma-separated)
    existing: bool = False  # a path that must name an existing file (checked where a command line is parsed)
    private: bool = False  # never shown by info() (e.g. it may carry credentials)


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field that is an option; `default` may be dataclasses.MISSING for a required one."""
    return field(default=default, metadata={_KEY: Spec(help, **spec)})


def redefault(owner: type, name: str, default: Any) -> Any:
    """The option `name` of `owner` with another default (a subclass's own default, same help and checks)."""
    (found,) = [f for f in fields(owner) if f.name == name]
    return field(default=default, metadata=found.metadata)


@dataclass(frozen=True)
class Option:
    """One field of an options dataclass, with what its annotation says."""

    name: str
    kind: type  # the type of one value: int, float, str, bool, Path
    optional: bool  # None allowed
    many: bool  # a tuple of values
    choices: tuple[Any, ...] | None
    default: Any  # MISSING when required
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    def convert(self, text: str) -> Any:
        """One value from text (an environment variable, a comma-separated item); ValueError names the problem."""
        if self.kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("not a valid bool (true or false)")
            return lowered in ("1", "true", "yes", "on")
        try:
            value = self.kind(text.strip())
        except ValueError:
            raise ValueError(f"not a valid {self.kind.__name__}") from None
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"choose from {', '.join(map(str, self.choices))}")
        return value

    def parse(self, text: str) -> Any:
        """The whole value from text: "" is None for an optional one, tuples are comma-separated."""
        if self.many:
            return tuple(self.convert(item) for item in text.split(",") if item.strip())
        if self.optional and not text.strip():
            return None
        return self.convert(text)


def _shape(hint: Any) -> tuple[type, bool, bool, tuple[Any, ...] | None]:
    """(kind, optional, many, choices) from an annotation such as `Literal["a", "b"] | None` or `tuple[Path, ...]`."""
    optional = many = False
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        optional, hint = len(args) < len(get_args(hint)), args[0]
    if get_origin(hint) is tuple:
        many, hint = True, get_args(hint)[0]
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        return type(choices[0]), optional, many, choices
    return hint, optional, many, None


@functools.cache
def options_of(cls: type) -> tuple[Option, ...]:
    """The options of a dataclass, in field order; every field must be an option(...)."""
    hints = get_type_hints(cls)
    found = []
    for f in fields(cls):
        spec = f.metadata.get(_KEY)
        if spec is None:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with option(...)")
        kind, optional, many, choices = _shape(hints[f.name])
        found.append(Option(f.name, kind, optional, many, spec.choices or choices, _default(f), spec))
    return tuple(found)


def _default(f: Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def check_value(opt: Option, value: Any) -> None:
    """Raises OptionError when `value` breaks the option's choices or bounds."""
    if value is None:
        if not opt.optional:
            raise OptionError(opt.name, "a value is needed")
        return
    for item in value if opt.many else (value,):
        if opt.choices is not None and item not in opt.choices:
            raise OptionError(opt.name, f"{item!r}: choose from {', '.join(map(str, opt.choices))}")
        spec = opt.spec
        if (spec.low is not None and item < spec.low) or (spec.high is not None and item > spec.high):
            bounds = f"between {spec.low} and {spec.high}" if spec.high is not None else f">= {spec.low}"
            raise OptionError(opt.name, f"{item!r}: must be {bounds}" + (" and even" if spec.even else ""))
        if spec.even and item % 2:
            raise OptionError(opt.name, f"{item!r}: must be even")


class Options:
    """Base of option dataclasses: values are checked when an instance is made (choices, bounds), then each
    class's own `rules(self)` (cross-field rules) runs, base classes first."""

    def __post_init__(self) -> None:
        for opt in options_of(type(self)):
            check_value(opt, getattr(self, opt.name))
        for klass in reversed(type(self).__mro__):
            rules = klass.__dict__.get("rules")
            if rules is not None:
                rules(self)


def section(config: object, cls: type[T], **changes: Any) -> T:
    """The part of `config` that `cls` declares (e.g. a stage's settings out of the pipeline's), as a `cls`."""
    return cls(**{f.name: getattr(config, f.name) for f in fields(cls)} | changes)


def info(config: object) -> dict[str, Any]:
    """Every option's value for a status page: private ones left out, paths as their file names."""
    shown: dict[str, Any] = {}
    for opt in options_of(type(config)):
        if opt.spec.private:
            continue
        value = getattr(config, opt.name)
        if isinstance(value, Path):
            value = value.name  # never the server's file layout
        elif isinstance(value, tuple):
            value = [v.name if isinstance(v, Path) else v for v in value]
        shown[opt.name] = value
    return shown

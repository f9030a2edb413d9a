"""Command lines from option dataclasses: one flag per field, optional environment fallbacks, and errors that
name the flag (or the variable) that was wrong."""

from __future__ import annotations

import argparse
import os
from collections.abc import Collection, Sequence
from dataclasses import MISSING
from typing import Any, TypeVar

from options.spec import Option, OptionError, options_of

T = TypeVar("T")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module docstring as written, and each option's default where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if action.help is None or action.required or default is None or default is argparse.SUPPRESS:
            return action.help
        if isinstance(default, tuple | list):
            default = ",".join(map(str, default)) or "none"
        return f"{action.help} (default: {str(default).replace('%', '%%')})"


def new_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


class OptionParser:
    """The flags of dataclass `cls` on `parser`; `env_prefix` makes <PREFIX><FIELD> variables their defaults."""

    def __init__(self, parser: argparse.ArgumentParser, cls: type[T], env_prefix: str | None = None,
                 exclude: Collection[str] = ()) -> None:
        self.parser, self.cls, self.env_prefix = parser, cls, env_prefix
        self.options = [opt for opt in options_of(cls) if opt.name not in exclude]
        self._repeat_defaults: dict[str, tuple[Any, ...]] = {}
        for opt in self.options:
            self._add(opt)

    def env_name(self, opt: Option) -> str | None:
        return None if self.env_prefix is None else self.env_prefix + opt.name.upper()

    def _env_default(self, opt: Option) -> Any:
        name = self.env_name(opt)
        raw = os.environ.get(name) if name else None
        if raw is None:
            return opt.default
        try:  # argparse checks neither the type nor the choices of a default, so the variable is checked here
            return opt.parse(raw)
        except ValueError as error:
            self.parser.error(f"environment variable {name}={raw!r}: {error}")

    def _add(self, opt: Option) -> None:
        names = [opt.flag, *opt.spec.aliases]
        default = self._env_default(opt)
        help_text = opt.spec.help
        if opt.many and not opt.spec.repeat and opt.choices:
            help_text += f" (from {', '.join(map(str, opt.choices))})"
        common: dict[str, Any] = {"dest": opt.name, "help": help_text}
        if opt.choices is None and opt.kind is not bool:
            common["metavar"] = opt.flag.lstrip("-").replace("-", "_").upper()
        if default is MISSING:
            common["required"] = True
        else:
            common["default"] = default
        if opt.kind is bool and not opt.many:
            self.parser.add_argument(*names, action=argparse.BooleanOptionalAction, **common)
        elif opt.many and opt.spec.repeat:
            if default is not MISSING:  # append would add to a given default list: None stands for it
                self._repeat_defaults[opt.name] = default
                common["default"] = None
            self.parser.add_argument(*names, action="append", type=opt.kind, choices=opt.choices, **common)
        elif opt.many or opt.optional:  # comma-separated items, or "" for none
            self.parser.add_argument(*names, type=_text_parser(opt), **common)
        else:
            self.parser.add_argument(*names, type=opt.kind, choices=opt.choices, **common)

    def parse(self, argv: Sequence[str] | None = None, **fixed: Any) -> T:
        """The dataclass from the command line (and environment); `fixed` sets excluded fields.
        Any bad value or broken rule exits with a message naming the flag."""
        args = vars(self.parser.parse_args(argv))
        args.update({name: default for name, default in self._repeat_defaults.items() if args[name] is None})
        values = {opt.name: tuple(args[opt.name]) if opt.many else args[opt.name] for opt in self.options}
        for opt in self.options:
            value = values[opt.name]
            if opt.spec.existing and value is not None:
                for path in value if opt.many else (value,):
                    if not path.is_file():
                        self.parser.error(f"{opt.flag}: no such file: {path}")
        try:
            return self.cls(**values, **fixed)
        except OptionError as error:
            self.parser.error(f"{self.label(error.name)}: {error}")

    def label(self, name: str) -> str:
        """How a user names the option: its flag, and its variable when that is set."""
        opt = next((o for o in self.options if o.name == name), None)
        if opt is None:
            return name
        env = self.env_name(opt)
        return f"{opt.flag} ({env})" if env and env in os.environ else opt.flag


def _text_parser(opt: Option) -> Any:
    def parse(text: str) -> Any:
        try:
            return opt.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None

    parse.__name__ = opt.kind.__name__
    return parse

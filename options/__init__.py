"""Options declared once, as dataclass fields, from which flags, environment variables, checks and info derive."""

from options.cli import OptionParser, new_parser
from options.spec import MISSING, Option, OptionError, Options, info, option, options_of, redefault, section

__all__ = ["MISSING", "Option", "OptionError", "OptionParser", "Options", "info", "new_parser", "option",
           "options_of", "redefault", "section"]

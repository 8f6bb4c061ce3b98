"""Command-line options, built from the settings classes themselves.

Each settings field made with config.option() becomes one option of the
commands its scopes name (FILE: cartoonize and batch; IMAGE; LIVE: webcam):
the Recipe's own (--stabilize, --compare, --batch-size), the encoder's, and
every registered backend's, in a group of its own. An option is declared once,
beside its field and default; recipe_from_args() reads them all back.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING

from .. import backends
from ..config import FILE, IMAGE, LIVE, EncodeSettings, Flag, Recipe, cli_fields

OWNERS = ("recipe", "encode")  # argparse dests are OWNER.FIELD; a backend's owner is its name


def common_options(top_level: bool) -> argparse.ArgumentParser:
    """--quiet/--traceback, accepted before or after the subcommand. Subcommands
    suppress the default so that they do not reset a value given before them."""
    common = argparse.ArgumentParser(add_help=False)
    default = False if top_level else argparse.SUPPRESS
    common.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bar or notes; errors only")
    common.add_argument("--traceback", action="store_true", default=default, help="show the full traceback on errors")
    return common


def cartoon_options(scope: str) -> argparse.ArgumentParser:
    """The options that say how frames become cartoons (and, for video, how they are
    encoded), as they apply to `scope`: config.FILE, IMAGE or LIVE."""
    parser = argparse.ArgumentParser(add_help=False)
    ordered = backends.specs()
    names = ", ".join(s.name for s in ordered)
    parser.add_argument(
        "--backend", choices=("auto", *sorted(s.name for s in ordered)), default="auto",
        help=f"auto (default): the first of {names} that can run here, said in one line; "
        + "; ".join(f"{s.name}: {s.help}" for s in ordered),
    )
    _add_fields(parser, Recipe, "recipe", scope)
    for spec in sorted(ordered, key=lambda s: s.name):
        _add_fields(parser.add_argument_group(f"{spec.name} backend"), spec.settings, spec.name, scope)
    _add_fields(parser.add_argument_group("encoding"), EncodeSettings, "encode", scope)
    return parser


def _add_fields(group: argparse._ActionsContainer, settings_class: type, owner: str, scope: str) -> None:
    """One option per option() field of `settings_class` that applies to `scope`. Values
    not given stay out of the namespace, so the field's own default applies."""
    for f, flag in cli_fields(settings_class):
        if scope not in flag.scopes:
            _refuse(group, flag, scope)
            continue
        kwargs = dict(flag.argparse)
        if "action" not in kwargs:
            if f.default is False:
                kwargs["action"] = "store_true"
            elif "type" not in kwargs and f.default is not None and not isinstance(f.default, str):
                kwargs["type"] = type(f.default)
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs.setdefault("metavar", flag.flag.lstrip("-").upper().replace("-", "_"))
        help = flag.help + _default_text(f.default if f.default is not MISSING else None)
        group.add_argument(flag.flag, dest=f"{owner}.{f.name}", default=argparse.SUPPRESS, help=help, **kwargs)


SCOPE_WORDS = {FILE: "video files (cartoonize, batch)", IMAGE: "one picture (image)", LIVE: "the webcam"}


def _refuse(group: argparse._ActionsContainer, flag: Flag, scope: str) -> None:
    """A hidden option that fails with a reason, where an option cannot apply
    (e.g. --codec to one picture), instead of argparse's bare 'unrecognized'."""
    where = " and ".join(SCOPE_WORDS[s] for s in sorted(flag.scopes))

    class NotHere(argparse.Action):
        def __call__(self, parser: argparse.ArgumentParser, *rest: object) -> None:
            parser.error(f"{flag.flag} does not apply to {SCOPE_WORDS[scope]}; it is for {where}")

    takes_value = flag.argparse.get("action") is None and "nargs" not in flag.argparse
    group.add_argument(flag.flag, action=NotHere, nargs="?" if takes_value else 0, help=argparse.SUPPRESS,
                       default=argparse.SUPPRESS, dest=f"not_here.{flag.flag}")


def _default_text(default: object) -> str:
    if default is None or isinstance(default, bool):
        return ""  # off unless given, said by the help itself
    if isinstance(default, str):
        return f" (default {default!r})"
    return f" (default {default:g})" if isinstance(default, float) else f" (default {default})"


def _given(args: argparse.Namespace, settings_class: type, owner: str) -> dict:
    values = vars(args)
    return {f.name: values[f"{owner}.{f.name}"] for f, _ in cli_fields(settings_class) if f"{owner}.{f.name}" in values}


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """One frozen Recipe from the cartoon_options() of a parsed command line;
    options left out keep their fields' defaults."""
    settings = {spec.name: spec.settings(**_given(args, spec.settings, spec.name)) for spec in backends.specs()}
    encode = EncodeSettings(**_given(args, EncodeSettings, "encode"))
    return Recipe(backend=args.backend, settings=settings, encode=encode, **_given(args, Recipe, "recipe"))

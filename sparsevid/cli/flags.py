"""Command-line flags derived from the config dataclasses (our small equivalent of tyro).

Every leaf field of a config dataclass becomes one flag, nested configs joined by dots and
underscores written as dashes: ``RunConfig.train.densify.prune_opa`` -> ``--train.densify.prune-opa``,
``RunConfig.seed`` -> ``--seed``. A bool field is a pair, ``--fuse.guided`` / ``--fuse.no-guided``
(top level: ``--keep-inputs`` / ``--no-keep-inputs``). Nothing here names a field, so a new field
gets its flag without code:

* the value is read by :func:`sparsevid.configfile.value_from_text`, the per-type conversion of
  ``config.yaml`` (``--path.fps 30000/1001``, ``--fuse.detail-choices 1,2,4``, ``--pose.focal none``);
* the help is the field's documentation in its dataclass: its entry in the class docstring's
  ``Attributes:`` section, else the ``#`` comment lines directly above the field and the comment at
  the end of its line (:func:`field_docs`);
* each nested config is one argument group of ``--help`` (``train``, ``train.densify``, ``fuse``, ...).

A command keeps its documented short flags as aliases of the derived ones (``--steps`` is
``--train.steps``: one argparse action, so both behave the same) and may replace a field's help or
parser, through :class:`FlagDoc`. A flag stores what was typed (:class:`Given`); a flag not given
stores nothing, so it never overrides a config file (:func:`apply_flags`). Values are converted in
:func:`apply_flags`, not by argparse, so a bad value is a one-line :class:`SparsevidError` naming
the flag (exit status 2), like every other user error.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import io
import re
import textwrap
import tokenize
import types
import typing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, NamedTuple

from sparsevid.configfile import value_from_text
from sparsevid.errors import SparsevidError


class Given(NamedTuple):
    """A flag given on the command line: the option string used and the text after it."""

    flag: str
    text: str


@dataclass(frozen=True)
class FlagDoc:
    """A command's additions to one derived flag.

    Attributes:
        aliases: extra option strings (the command's documented short flags, e.g. ``--steps``).
        negative_aliases: bool fields: extra option strings that set False (e.g. ``--no-video``).
        help: replaces the help taken from the field's documentation.
        parse: ``parse(text, flag) -> value`` replaces the generic conversion (after ``none`` ->
            None where the field allows None).
        choices: the allowed values (checked, and shown in ``--help``).
        metavar: the value's name in ``--help``.
        example: a value an error message suggests (default: the field's default, else one of its type).
    """

    aliases: tuple[str, ...] = ()
    negative_aliases: tuple[str, ...] = ()
    help: str | None = None
    parse: Callable[[str, str], Any] | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    example: str | None = None


@dataclass(frozen=True)
class Flag:
    """One leaf field of a config dataclass as a flag.

    Attributes:
        path: the field's dotted path from the root config (``train.densify.prune_opa``).
        type: the field's type.
        default: the field's default in the dataclass (shown in ``--help``).
        flags: option strings; the derived one first (``--train.densify.prune-opa``).
        negatives: bool fields: the option strings that set False.
        help: ``--help`` text.
        section: the argument group (dotted path of the nested config; "" for the root's fields).
        doc: the command's additions.
    """

    path: str
    type: Any
    default: Any
    flags: tuple[str, ...]
    negatives: tuple[str, ...]
    help: str
    section: str
    doc: FlagDoc

    @property
    def dest(self) -> str:
        """The argparse destination: the derived flag without its dashes (``train.steps``)."""
        return self.flags[0].lstrip("-").replace("-", "_")


def input_path(text: str) -> Path:
    """An INPUT argument as a path; an empty one (``run "$CLIP"`` with the variable unset) is refused, where
    ``Path("")`` would be the current folder, read as the clip."""
    if not str(text).strip():
        raise argparse.ArgumentTypeError("an empty path (an unset shell variable?): give a folder of frames, a "
                                         "video, a COLMAP dataset or a transforms.json")
    return Path(text)


def flag_name(path: str, prefix: str = "") -> str:
    """``train.densify.prune_opa`` -> ``--train.densify.prune-opa`` (``prefix`` goes first)."""
    parts = ([prefix] if prefix else []) + path.split(".")
    return "--" + ".".join(p.replace("_", "-") for p in parts)


def negative_name(path: str, prefix: str = "") -> str:
    """The False switch of a bool: ``fuse.guided`` -> ``--fuse.no-guided``, ``keep_inputs`` -> ``--no-keep-inputs``."""
    *head, last = (([prefix] if prefix else []) + path.split("."))
    return "--" + ".".join([p.replace("_", "-") for p in head] + ["no-" + last.replace("_", "-")])


# ---------------------------------------------------------------------------------------------
# the fields
# ---------------------------------------------------------------------------------------------
def leaf_fields(cls: type, where: str = "") -> list[tuple[str, Any, Any, type]]:
    """(dotted path, type, default, owning class) of every leaf field of the dataclass ``cls``,
    recursing into fields whose type is a dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if dataclasses.is_dataclass(tp):
            out += leaf_fields(tp, f"{where}{f.name}.")
        else:
            out.append((f"{where}{f.name}", tp, default, cls))
    return out


def config_flags(cls: type, docs: dict[str, FlagDoc] | None = None, prefix: str = "",
                 skip: tuple[str, ...] = ()) -> list[Flag]:
    """A :class:`Flag` for every leaf field of the dataclass ``cls`` (except the paths in ``skip``).

    Args:
        docs: field path -> the command's :class:`FlagDoc` (aliases, help, parser).
        prefix: put before every derived flag (``sparsevid train`` derives ``TrainConfig`` as
            ``--train.*``, as in ``run``).
    """
    docs = docs or {}
    unknown = set(docs) - {p for p, *_ in leaf_fields(cls)}
    if unknown:
        raise ValueError(f"FlagDoc for fields that {cls.__name__} does not have: {sorted(unknown)}")
    flags = []
    for path, tp, default, owner in leaf_fields(cls):
        if path in skip:
            continue
        doc = docs.get(path, FlagDoc())
        name = path.rsplit(".", 1)[-1]
        text = doc.help if doc.help is not None else field_docs(owner).get(name, "")
        is_bool = tp is bool
        flags.append(Flag(
            path=path, type=tp, default=default,
            flags=(flag_name(path, prefix),) + doc.aliases,
            negatives=((negative_name(path, prefix),) + doc.negative_aliases) if is_bool else (),
            help=text, section=".".join(([prefix] if prefix else []) + path.split(".")[:-1]), doc=doc))
    return flags


# ---------------------------------------------------------------------------------------------
# argparse
# ---------------------------------------------------------------------------------------------
class _StoreGiven(argparse.Action):
    """Stores :class:`Given` (the option string and the text); a bool's switches store "true"/"false"."""

    def __init__(self, option_strings, dest, negatives=(), **kw):
        self.negatives = tuple(negatives)
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        if self.nargs == 0:
            values = "false" if option_string in self.negatives else "true"
        setattr(namespace, self.dest, Given(option_string, values))

    def format_usage(self) -> str:  # shown by argparse for bool switches
        return " | ".join(self.option_strings)


def add_flags(parser: argparse.ArgumentParser, flags: list[Flag], root_title: str | None = None,
              titles: dict[str, str] | None = None) -> None:
    """Add ``flags`` to ``parser``: the root config's fields to the parser's own options (or to a
    group ``root_title``), every nested config's to an argument group named by its path."""
    groups: dict[str, Any] = {}
    for fl in flags:
        if fl.section not in groups:
            if fl.section == "" and root_title is None:
                groups[""] = parser
            else:
                title = fl.section or root_title
                groups[fl.section] = parser.add_argument_group(title, (titles or {}).get(fl.section))
        target = groups[fl.section]
        help_text = _help(fl)
        shown = fl.doc.aliases + fl.flags[:1]  # the documented short flags first
        if fl.negatives:
            negatives = fl.doc.negative_aliases + fl.negatives[:1]
            target.add_argument(*(shown + negatives), dest=fl.dest, action=_StoreGiven, nargs=0,
                                negatives=negatives, default=argparse.SUPPRESS, help=help_text)
        else:
            target.add_argument(*shown, dest=fl.dest, action=_StoreGiven, default=argparse.SUPPRESS,
                                metavar=fl.doc.metavar or _metavar(fl), help=help_text)


def section_titles(cls: type, prefix: str = "") -> dict[str, str]:
    """Group descriptions for :func:`add_flags`: config path -> the first paragraph of its class
    docstring, for every nested config of ``cls`` (and ``cls`` itself under a ``prefix``)."""
    out = {}
    if prefix:
        first = (inspect.getdoc(cls) or "").strip().split("\n\n")[0]
        out[prefix] = f"{cls.__name__}: " + user_terms(_clean(first)).replace("%", "%%")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(section_titles(tp, f"{prefix}.{f.name}" if prefix else f.name))
    return out


#: Python terms of the config docstrings a flag's help is made from, in the words of the command line
_USER_TERMS = ((re.compile(r"\s*\((?:see )?sparsevid\.[\w.]+\)"), ""),                    # (sparsevid.fuse.x.y)
               (re.compile(r"\bsparsevid\.[\w.]+\.(\w+)"), r"\1"),
               (re.compile(r"\bRunConfig\.(\w+)"), lambda m: "--" + m.group(1).replace("_", "-")),
               (re.compile(r"\bNone\b"), "none"), (re.compile(r"\bTrue\b"), "on"), (re.compile(r"\bFalse\b"), "off"))


def user_terms(text: str) -> str:
    """A config docstring's words as a flag's help says them: ``None`` -> none, ``True`` / ``False`` -> on / off,
    ``RunConfig.cpu_coarse_fraction`` -> ``--cpu-coarse-fraction``, module paths dropped."""
    for pattern, repl in _USER_TERMS:
        text = pattern.sub(repl, text)
    return text


def _help(fl: Flag) -> str:
    text = user_terms(fl.help.rstrip("."))
    if fl.negatives:
        shown = "on" if fl.default else "off"
    else:
        shown = _show(fl.default)
    if "default:" not in text:  # a help written for the command may say it in its own words
        text = f"{text} (default: {shown})" if text else f"default: {shown}"
    return text.replace("%", "%%")


def _show(v: Any) -> str:
    if v is None:
        return "none"
    if isinstance(v, (tuple, list)):
        return ",".join(_show(x) for x in v) if v else '""'
    if isinstance(v, Fraction):
        return str(v)
    if isinstance(v, dict):
        return "{}" if not v else str(v)
    return str(v)


def _metavar(fl: Flag) -> str:
    if fl.doc.choices:
        return "{" + ",".join(fl.doc.choices) + "}"
    return _type_name(fl.type)


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return "|".join(dict.fromkeys(names))  # "none" is always accepted where the type allows it
    if origin is typing.Literal:
        return "{" + ",".join(map(str, args)) + "}"
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return ",".join(_type_name(a) for a in args)
    if origin in (tuple, list) or origin is not None and getattr(origin, "__name__", "") == "Sequence":
        return (_type_name(args[0]) if args else "X") + ",..."
    if tp is dict or origin is dict:
        return "YAML"
    return {int: "INT", float: "FLOAT", str: "STR", bool: "BOOL", Path: "PATH", Fraction: "FRACTION"}.get(
        tp, getattr(tp, "__name__", str(tp)).upper())


# ---------------------------------------------------------------------------------------------
# flags -> config
# ---------------------------------------------------------------------------------------------
def given(args: argparse.Namespace, fl: Flag) -> Given | None:
    """What was typed for ``fl`` (None: not on the command line)."""
    v = getattr(args, fl.dest, None)
    return v if isinstance(v, Given) else None


def flag_value(fl: Flag, g: Given) -> Any:
    """The value of ``fl`` from what was typed, as the field's type.

    Raises:
        SparsevidError: a value the field does not take, as one line naming the flag as typed.
    """
    if fl.negatives:  # a switch: "true" / "false"
        return g.text == "true"
    allows_none = type(None) in typing.get_args(fl.type)
    if allows_none and g.text.strip().lower() in ("none", "null"):
        return None
    if fl.doc.choices and g.text not in fl.doc.choices:
        raise SparsevidError(f"{g.flag} must be one of {', '.join(fl.doc.choices)}, got {g.text!r}",
                             fix=f"pass e.g. {g.flag} {fl.doc.choices[0]}")
    if fl.doc.parse is not None:
        return fl.doc.parse(g.text, g.flag)
    try:
        return value_from_text(fl.type, g.text, g.flag)
    except SparsevidError:
        example = fl.doc.example or (_show(fl.default) if fl.default not in (None, (), {}) else
                                     _EXAMPLES.get(_metavar(fl)))
        raise SparsevidError(f"{g.flag} must be {_type_words(fl.type)}, got {g.text!r}",
                             fix=f"pass e.g. {g.flag} {example}" if example else "see --help") from None


_EXAMPLES = {"INT": "2", "FLOAT": "0.5", "INT|none": "2", "FLOAT|none": "0.5"}


def _type_words(tp: Any) -> str:
    """``int | None`` -> "an integer or none", for error messages."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        words = [_type_words(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(words + (["none"] if type(None) in args else [])))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        return f"{len(args)} comma-separated values ({_type_name(tp)})"
    if origin in (tuple, list) or (origin is not None and getattr(origin, "__name__", "") == "Sequence"):
        return "comma-separated values" + (f" ({_type_name(args[0])} each)" if args else "")
    if tp is dict or origin is dict:
        return "a YAML mapping like '{name: 1}'"
    return {int: "an integer", float: "a number", bool: "true or false", Fraction: "a number or a fraction "
            "like 30000/1001", str: "text", Path: "a path"}.get(tp, getattr(tp, "__name__", str(tp)))


def apply_flags(cfg: Any, args: argparse.Namespace, flags: list[Flag]) -> list[str]:
    """Set on ``cfg`` (in place) every field whose flag was given; the others keep their values.

    Returns:
        the paths of the fields set.
    """
    done = []
    for fl in flags:
        g = given(args, fl)
        if g is None:
            continue
        value = flag_value(fl, g)
        *parents, name = fl.path.split(".")
        target = cfg
        for part in parents:
            target = getattr(target, part)
        setattr(target, name, value)
        done.append(fl.path)
    return done


def in_file_terms(err: SparsevidError, flags: list[Flag], given_paths: set[str], path: Path) -> SparsevidError:
    """``err`` (a settings check's error, which names flags: ``--steps must be ...``) in the terms of the config
    file ``path`` where the setting it names came from the file rather than the command line: the flag becomes
    the file's key (``train.steps must be ...``), the error names the file, and the fix says to correct the key
    there or to override it with the flag. An error naming no flag, or a flag given on the command line, is
    returned as it is."""
    first = re.search(r"(?<![\w-])--[a-z][\w.-]*", err.message)
    fl = None if first is None else next(
        (f for f in flags if first.group(0) in f.flags or first.group(0) in f.negatives), None)
    if fl is None or fl.path in given_paths:
        return err
    names = sorted(fl.flags + fl.negatives, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, names)) + r")(?![\w-])")
    message = pattern.sub(fl.path, err.message)
    fix = f"correct {fl.path} in the file" + (f", or override it: {err.fix}" if err.fix else "")
    return SparsevidError(message, fix=fix, path=path)


# ---------------------------------------------------------------------------------------------
# help from the dataclasses' own documentation
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its documentation in the dataclass ``cls``, one line: the entry in the class
    docstring's ``Attributes:`` section (``name: text``, ``a, b: text`` for both), else the comment
    lines directly above the field plus the comment at the end of its line."""
    docs = _comment_docs(cls)
    docs.update(_attribute_docs(inspect.getdoc(cls) or ""))
    return {k: _clean(v) for k, v in docs.items() if v.strip()}


def _attribute_docs(doc: str) -> dict[str, str]:
    out: dict[str, str] = {}
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Attributes:":
            head = len(line) - len(line.lstrip())
            break
    else:
        return out
    names: list[str] = []
    entry_indent = None
    for line in lines[i + 1:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= head:
            break
        m = re.match(r"\s*([A-Za-z_][\w]*(?:\s*,\s*[A-Za-z_][\w]*)*)\s*:(?:\s+(.*)|$)", line)
        if m and (entry_indent is None or indent == entry_indent):
            entry_indent = indent
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2) or ""
        else:
            for n in names:
                out[n] += " " + line.strip()
    return out


def _comment_docs(cls: type) -> dict[str, str]:
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, tuple[str, bool]] = {}  # line -> (text, the line holds only the comment)
    code_lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            row = tok.start[0]
            alone = not code_lines[row - 1][:tok.start[1]].strip()
            text = tok.string.lstrip("#").strip()
            if not re.match(r"(noqa|type:|pragma)", text):
                comments[row] = (text, alone)
    cls_node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
    out = {}
    for node in cls_node.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above = []
        row = node.lineno - 1
        while row in comments and comments[row][1]:
            above.insert(0, comments[row][0])
            row -= 1
        trailing = [comments[r][0] for r in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                    if r in comments and not comments[r][1]]
        out[node.target.id] = " ".join(above + trailing)
    return out


def plain_doc(text: str) -> str:
    """Docstring markup -> plain text for ``--help`` (roles and double backticks dropped; lines kept)."""
    return re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")


def _clean(text: str) -> str:
    """Docstring markup -> plain text on one line (roles and double backticks dropped)."""
    return " ".join(plain_doc(text).split())


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's "(default: X)" after each help, but not where the help already names its default, nor for
    a default that says nothing (None, a switch's False, or no value at all)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False) or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


class RawDefaultsFormatter(argparse.RawDescriptionHelpFormatter, DefaultsFormatter):
    """:class:`DefaultsFormatter` for a command whose description is laid out by hand."""


class Parser(argparse.ArgumentParser):
    """The parser of every sparsevid command: no abbreviated flags (``--video.cr 30`` is an error, not
    ``--video.crf 30``: with ~170 derived flags a prefix is too easily another flag's), and the defaults
    shown as :class:`DefaultsFormatter` shows them."""

    _FORMATTERS = {argparse.ArgumentDefaultsHelpFormatter: DefaultsFormatter,
                   argparse.RawDescriptionHelpFormatter: RawDefaultsFormatter,
                   argparse.HelpFormatter: DefaultsFormatter}

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        given = kwargs.get("formatter_class", argparse.HelpFormatter)
        kwargs["formatter_class"] = self._FORMATTERS.get(given, given)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown flag is reported by the subcommand it was given to, with the closest
        flag it has (``--stpes`` -> ``--steps``), not as "unrecognized arguments" under the top-level usage."""
        parsed, extras = self.parse_known_args(args, namespace)
        if not extras:
            return parsed
        import difflib

        command = self._command_parser(getattr(parsed, "command", None)) or self
        options = [o for a in command._actions for o in a.option_strings if o.startswith("--")]
        unknown = next((e for e in extras if e.startswith("-")), None)
        if unknown is None:  # extra positional arguments: all of them, as argparse says it
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        flag = unknown.split("=", 1)[0]
        close = difflib.get_close_matches(flag, options, n=1, cutoff=0.75) if flag.startswith("--") else []
        others = [e for e in extras if e.startswith("-") and e != unknown]  # (the rest: their values)
        command.error(f"unrecognized argument {unknown}" + (f" (did you mean {close[0]}?)" if close else "")
                      + (f"; also {' '.join(others)}" if others else ""))

    def _command_parser(self, name: str | None) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]
        return None

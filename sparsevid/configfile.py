"""Configs as files: a (nested) config dataclass <-> plain dict <-> YAML.

``sparsevid run`` writes its whole :class:`~sparsevid.pipeline.RunConfig` to ``OUT/config.yaml``
and ``sparsevid run --config OUT/config.yaml`` reads it back (see :mod:`sparsevid.cli.run`). The
conversion follows the dataclasses' own field types, so a new field needs no code here:

* nested config dataclasses -> mappings (``pose:``, ``train:``, ``fixer:``, ...);
* paths -> strings, tuples -> lists (and back, by the field's type);
* exact rates (:class:`~fractions.Fraction`) -> ``"30000/1001"`` (an integer when whole).

:func:`value_from_text` reads one field's value from command-line text by the same conversion
(the flags derived from the dataclasses, :mod:`sparsevid.cli.flags`).

Reading refuses unknown keys and values of the wrong kind with a one-line error naming the key.
Missing keys keep the dataclass defaults, so a short hand-written file works too.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from sparsevid.errors import SparsevidError

C = TypeVar("C")


def config_to_dict(cfg: Any) -> dict:
    """The fields of the dataclass ``cfg`` as plain YAML/JSON values (see the module doc)."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return config_to_dict(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, Fraction):
        return int(v) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return v.item()
    return v


def config_from_dict(cls: type[C], data: dict, where: str = "") -> C:
    """An instance of the dataclass ``cls`` from ``data`` (as written by :func:`config_to_dict`):
    each value converted to its field's type; fields not in ``data`` keep their defaults.

    Raises:
        SparsevidError: an unknown key or a value of the wrong kind (the message names ``where.key``).
    """
    if not isinstance(data, dict):
        raise SparsevidError(f"{where.rstrip('.') or 'the config'} must be a mapping of settings, "
                             f"got {type(data).__name__}", fix="write it as `key: value` lines")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        import difflib

        close = difflib.get_close_matches(str(unknown[0]), list(fields), n=1)
        raise SparsevidError(f"unknown setting {where}{unknown[0]!s}"
                             + (f" (did you mean {where}{close[0]}?)" if close else ""),
                             fix=f"use the settings of {cls.__name__}: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _convert(hints[k], v, f"{where}{k}") for k, v in data.items()})


def with_settings(cfg: C, edits: dict) -> C:
    """A copy of the dataclass ``cfg`` with ``edits`` applied: ``{"field": value}``, a nested dataclass's
    fields as a nested mapping (``{"flow": {"mirrors": 1}}``) or a dotted key (``{"flow.mirrors": 1}``);
    the others keep ``cfg``'s values. Values are checked as in a config file (:func:`config_from_dict`)."""
    data = config_to_dict(cfg)
    for key, value in edits.items():
        *outer, last = key.split(".")
        node = data
        for name in outer:
            node = node.setdefault(name, {})
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = {**node[last], **{k: _plain(v) for k, v in value.items()}}
        else:
            node[last] = _plain(value)
    return config_from_dict(type(cfg), data)


def _convert(tp: Any, v: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None or (type(None) in args and isinstance(v, str)
                         and v.strip().lower() in ("none", "null", "~")):  # `none` unsets, as a flag's value does
            if type(None) in args:
                return None
            raise _kind_error(key, tp, v)
        options = [a for a in args if a is not type(None)]
        if Fraction in options and isinstance(v, str) and "/" in v:
            return _fraction(v, key)
        for a in options:  # the first type the value fits
            try:
                return _convert(a, v, key)
            except SparsevidError:
                continue
        raise _kind_error(key, tp, v)
    if v is None:
        raise _kind_error(key, tp, v)
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, v, f"{key}.")
    if origin is typing.Literal:
        if v not in args:
            raise SparsevidError(f"{key} must be one of {', '.join(map(repr, args))}, got {v!r}")
        return v
    if tp is Any:
        return v
    if tp is Path:
        if not isinstance(v, str):
            raise _kind_error(key, tp, v)
        return Path(v)
    if tp is Fraction:
        return _fraction(v, key)
    if tp is bool:
        if not isinstance(v, bool):
            raise _kind_error(key, tp, v)
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _kind_error(key, tp, v)
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _kind_error(key, tp, v)
        return float(v)
    if tp is str:
        if isinstance(v, (int, float)) and not isinstance(v, bool):  # `start: 2.5` (YAML reads a number)
            return str(v)
        if not isinstance(v, str):
            raise _kind_error(key, tp, v)
        return v
    if tp is dict or origin is dict:
        if not isinstance(v, dict):
            raise _kind_error(key, tp, v)
        return dict(v)
    if origin is tuple or tp is tuple:
        if not isinstance(v, (list, tuple)):
            raise _kind_error(key, tp, v)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], x, key) for x in v)
        if args and len(args) != len(v):
            raise SparsevidError(f"{key} must have {len(args)} values, got {len(v)}")
        return tuple(_convert(a, x, key) for a, x in zip(args, v)) if args else tuple(v)
    if origin in (list, collections.abc.Sequence) or tp is list:
        if not isinstance(v, (list, tuple)):
            raise _kind_error(key, tp, v)
        return [_convert(args[0], x, key) for x in v] if args else list(v)
    return v  # a type this module does not know: as loaded


def value_from_text(tp: Any, text: str, key: str) -> Any:
    """A value of the field type ``tp`` from command-line text (see :mod:`sparsevid.cli.flags`): the
    text becomes the plain value a YAML file would hold, which :func:`config_from_dict`'s per-type
    conversion then checks and converts, so a flag and ``config.yaml`` accept the same values.

    ``none`` (or ``null``) is None where the type allows it; ``true/false`` (``yes/no``, ``on/off``,
    ``1/0``) a bool; ``30000/1001`` an exact rate; ``600,900,1200`` (commas and/or spaces) a tuple or
    list; ``{a: 1}`` (YAML) a mapping; anything else is parsed as the field's type.

    Raises:
        SparsevidError: a text that is not a value of ``tp`` (the message names ``key``).
    """
    return _convert(tp, _plain_from_text(tp, text, key), key)


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _plain_from_text(tp: Any, text: str, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    word = text.strip()
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and word.lower() in ("none", "null", "~"):
            return None
        options = [a for a in args if a is not type(None)]
        if Fraction in options and "/" in word:
            return word
        for a in options:  # the first type the text fits (as _convert tries them)
            try:
                plain = _plain_from_text(a, text, key)
                _convert(a, plain, key)
                return plain
            except SparsevidError:
                continue
        raise _kind_error(key, tp, text)
    if dataclasses.is_dataclass(tp):
        raise SparsevidError(f"{key} is a group of settings, not one value", fix=f"set its fields: {key}.NAME")
    if origin is typing.Literal:
        match = [a for a in args if str(a) == word]
        if not match:
            raise SparsevidError(f"{key} must be one of {', '.join(map(str, args))}, got {text!r}",
                                 fix=f"pass one of {', '.join(map(str, args))}")
        return match[0]
    if tp is bool:
        if word.lower() not in _TRUE + _FALSE:
            raise _kind_error(key, tp, text)
        return word.lower() in _TRUE
    if tp is int:
        try:
            return int(word)
        except ValueError:
            raise _kind_error(key, tp, text) from None
    if tp is float:
        try:
            return float(word)
        except ValueError:
            raise _kind_error(key, tp, text) from None
    if tp is dict or origin is dict:
        import yaml

        try:
            v = yaml.safe_load(text) if word else {}
        except yaml.YAMLError:
            v = None
        if not isinstance(v, dict):
            raise SparsevidError(f"{key} must be a mapping, got {text!r}", fix=f"write it like {key} '{{name: 1}}'")
        return v
    if origin in (tuple, list, collections.abc.Sequence) or tp in (tuple, list):
        parts = [p for p in word.replace(",", " ").split()]
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(parts) != len(args):
                raise SparsevidError(f"{key} must have {len(args)} values, got {len(parts)}",
                                     fix=f"write it like {key} {','.join(['1'] * len(args))}")
            return [_plain_from_text(a, p, key) for a, p in zip(args, parts)]
        return [_plain_from_text(args[0], p, key) for p in parts] if args else parts
    return text  # str, Path, Fraction, Any: as given (_convert makes the Path / Fraction)


def _fraction(v: Any, key: str) -> Fraction:
    try:
        return Fraction(v) if not isinstance(v, float) else Fraction(v).limit_denominator(1_000_000)
    except (TypeError, ValueError, ZeroDivisionError):
        raise _kind_error(key, Fraction, v) from None


def _kind_error(key: str, tp: Any, v: Any) -> SparsevidError:
    name = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
    return SparsevidError(f"{key} must be {name}, got {v!r}", fix=f"fix the value of {key}")


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------
def dump_yaml(cfg: Any, header: str = "") -> str:
    """``cfg`` as YAML text (keys in field order), after ``header`` comment lines."""
    import yaml

    class Dumper(yaml.SafeDumper):  # mappings as blocks (one setting a line), lists on one line
        pass

    Dumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))
    head = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return head + yaml.dump(config_to_dict(cfg), Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100)


def load_yaml(cls: type[C], path: str | Path) -> C:
    """The ``cls`` config in the YAML file ``path`` (see :func:`config_from_dict`).

    Raises:
        SparsevidError: unreadable file, bad YAML, unknown keys or wrong values, as one line.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SparsevidError(f"cannot read the config ({e.strerror or e})", path=path,
                             fix="pass the config.yaml of a run folder (OUT/config.yaml)") from None
    except UnicodeDecodeError as e:  # a video, a binary file, or YAML saved in Latin-1
        raise SparsevidError(f"the config is not a UTF-8 text file (byte {e.start})", path=path,
                             fix="pass a YAML file saved as UTF-8, e.g. the config.yaml of a run folder") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SparsevidError(f"the config is not valid YAML{where}", path=path,
                             fix="fix the file, or write it again with `sparsevid run`") from None
    try:
        return config_from_dict(cls, data if data is not None else {})
    except SparsevidError as e:
        raise SparsevidError(e.message, fix=e.fix, path=path) from None

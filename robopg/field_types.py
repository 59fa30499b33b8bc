"""The one type check of config values: every field of every section (robopg/config.py) against its annotation.

Config files (TOML, JSON, a run's config.json) hold whatever was typed; argparse types the flags, but nothing
types a file. Each value is checked once here, by the kind of its dataclass field, before the section is built:

| annotation | accepts | e.g. refused |
|---|---|---|
| ``int`` | integers (not booleans: ``true`` is not 1) | ``2.5``, ``"1000"``, ``true`` |
| ``float`` | numbers; integers become floats | ``"fast"``, ``true`` |
| ``bool`` | ``true`` / ``false`` | ``1``, ``"yes"`` |
| ``str`` | strings | ``5`` |
| an ``Enum`` | its values (or members) | ``"sgd"`` for an ``Activation`` |
| ``tuple[X, ...]`` | a list (or tuple) of X | ``64`` for ``hidden_sizes`` |
| ``X`` or ``None`` | what X accepts; ``null`` (JSON) leaves it unset | ``"wide"`` for ``init_log_std`` |

A refused value is a ``ValueError`` of one line: the file, ``[section] field = value``, what the field takes and
a fix written like the field's default.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from enum import Enum
from typing import Any


def checked_values(section_cls: type, section: str, values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` ({field: value}) of ``[section]`` with each value checked against its field's type (ints given
    for floats become floats, lists given for tuples become tuples). Raises ValueError naming the first bad one;
    unknown field names are the caller's check."""
    if not isinstance(values, dict):
        raise ValueError(f"{source}: [{section}] must be a table of fields, got {_shown(values)}. "
                         f"Fix: write it as a [{section}] table (field = value lines)")
    kinds = _field_kinds(section_cls)
    return {name: _checked(kinds[name], value, f"{source}: [{section}] {name}") if name in kinds else value
            for name, value in values.items()}


@functools.cache
def _field_kinds(section_cls: type) -> dict[str, tuple[Any, Any]]:
    """name -> (annotation, default) of each dataclass field (annotations resolved from their strings)."""
    hints = typing.get_type_hints(section_cls)
    return {f.name: (hints[f.name], f.default) for f in dataclasses.fields(section_cls)}


def _checked(kind: tuple[Any, Any], value: Any, where: str) -> Any:
    annotation, default = kind
    inner = optional_inner(annotation)
    if inner is not None:  # X | None: None (JSON null, a run's config.json) keeps the field unset
        if value is None:
            return None
        converted = _convert(inner, value)
        if converted is _REFUSED:
            raise ValueError(f"{where} = {_shown(value)} is not {_describe(inner)}. "
                             f"Fix: write {_describe(inner)}, or leave the field out for its default")
        return converted
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        if isinstance(value, list | tuple):
            bad = [x for x in value if _convert(item, x) is _REFUSED]
            if not bad:
                return tuple(_convert(item, x) for x in value)
        items = _describe(item).replace("one of", "values from") if issubclass(item, Enum) else _PLURALS[item]
        raise ValueError(_refusal(where, value, f"a list of {items}", default))
    converted = _convert(annotation, value)
    if converted is _REFUSED:
        raise ValueError(_refusal(where, value, _describe(annotation), default))
    return converted


def optional_inner(annotation: Any) -> Any:
    """X of an ``X | None`` annotation, else None."""
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


_REFUSED = object()
_PLURALS = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}


def _convert(annotation: Any, value: Any) -> Any:
    """``value`` as the annotation's type, or ``_REFUSED``."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        if isinstance(value, annotation):
            return value
        return annotation(value) if value in {member.value for member in annotation} else _REFUSED
    if annotation is bool:
        return value if isinstance(value, bool) else _REFUSED
    if annotation is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _REFUSED
    if annotation is float:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else _REFUSED
    if annotation is str:
        return value if isinstance(value, str) else _REFUSED
    raise TypeError(f"robopg/field_types.py has no check for fields of type {annotation}")


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(json.dumps(member.value) for member in annotation)
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[annotation]


def _refusal(where: str, value: Any, expected: str, default: Any) -> str:
    name = where.rsplit(" ", 1)[-1]
    return f"{where} = {_shown(value)} is not {expected}. Fix: write it like the default, {name} = {_shown(default)}"


def _shown(value: Any) -> str:
    """A value as a config file writes it (TOML and JSON agree on these): "fast", true, [64, 64], 2.5."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, tuple):
        value = [v.value if isinstance(v, Enum) else v for v in value]
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)

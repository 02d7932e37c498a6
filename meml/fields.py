"""Settings dataclasses in TRL's style: a help text per field, checks in ``__post_init__``.

One description serves three purposes: the field's type and metadata (``choices`` come from a
``Literal`` type, bounds from ``ge``/``gt``/``le`` metadata) are checked when an object is built
(:func:`check_fields`), read from YAML mappings with errors naming the key (:func:`from_mapping`),
and turned into the JSON schema Snakemake validates against (:func:`json_schema`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import MISSING, field
from functools import cache
from typing import Any, Literal, Union

SETTING = "setting"  # metadata flag: False for run-only fields that are not workflow settings (seed, threads, ...)


class ConfigError(ValueError):
    """A configuration that does not match the settings or is inconsistent; the message names the key."""


def setting(help: str, default=MISSING, *, factory=None, setting: bool = True, **bounds):
    """A dataclass field with its help text, bounds (``ge``, ``gt``, ``le``, ``pattern``, ``min_items``, ``items``) and
    ``setting=False`` for run-only fields the workflow config does not set."""
    metadata = {"help": help, SETTING: setting, **bounds}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@cache
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def settings_fields(cls) -> list[dataclasses.Field]:
    """The fields of ``cls`` that the workflow config may set."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get(SETTING, True) and f.init]


def _args(tp) -> tuple:
    return typing.get_args(tp)


def _is_union(tp) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _type_problem(tp, value) -> str | None:
    """Why ``value`` does not fit the annotation ``tp`` (None when it does); dataclasses are checked by their
    own ``__post_init__``."""
    if tp is Any:
        return None
    if _is_union(tp):
        problems = [_type_problem(arm, value) for arm in _args(tp)]
        return None if any(p is None for p in problems) else " or ".join(p for p in problems if p)
    origin = typing.get_origin(tp)
    if tp is type(None):
        return None if value is None else "expected null"
    if origin is Literal:
        return None if value in _args(tp) else f"expected one of {list(_args(tp))}, got {value!r}"
    if tp is bool:
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    if tp is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else f"expected an integer, got {value!r}"
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if tp is str:
        return None if isinstance(value, str) else f"expected a string, got {value!r}"
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return f"expected a list, got {value!r}"
        inner = _args(tp)[0] if _args(tp) else Any
        for i, item in enumerate(value):
            problem = _type_problem(inner, item)
            if problem:
                return f"item {i}: {problem}"
        return None
    if origin is dict:
        if not isinstance(value, dict):
            return f"expected a mapping, got {value!r}"
        key_type, inner = _args(tp) if _args(tp) else (Any, Any)
        for key, item in value.items():
            problem = _type_problem(key_type, key) or _type_problem(inner, item)
            if problem:
                return f"{key}: {problem}"
        return None
    if dataclasses.is_dataclass(tp):
        return None if isinstance(value, tp) else f"expected a {tp.__name__} mapping, got {value!r}"
    return None


def _bound_problem(meta: dict, value) -> str | None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if isinstance(value, dict):
        values = list(value.values())
    if "pattern" in meta:
        import re

        strings = value if isinstance(value, (list, tuple)) else [value]
        for v in strings:
            if isinstance(v, str) and not re.search(meta["pattern"], v):
                return f"{v!r} does not match {meta['pattern']!r}"
    if "min_items" in meta and isinstance(value, (list, tuple)) and len(value) < meta["min_items"]:
        return f"needs at least {meta['min_items']} item(s), got {len(value)}"
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if "ge" in meta and v < meta["ge"]:
            return f"must be >= {meta['ge']}, got {v}"
        if "gt" in meta and v <= meta["gt"]:
            return f"must be > {meta['gt']}, got {v}"
        if "le" in meta and v > meta["le"]:
            return f"must be <= {meta['le']}, got {v}"
    return None


def check_fields(obj, where: str) -> None:
    """Check every field of dataclass ``obj`` against its type and bounds; ``ValueError`` names ``where.field``."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        problem = _type_problem(hints[f.name], value) or _bound_problem(f.metadata, value)
        if problem:
            raise ValueError(f"{where}.{f.name}: {problem}")


def _dataclass_arm(tp):
    """The dataclass type inside ``tp`` (``X`` or ``X | None``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    if _is_union(tp):
        arms = [a for a in _args(tp) if dataclasses.is_dataclass(a)]
        return arms[0] if arms else None
    return None


def _known_fields(cls, mapping, where: str) -> dict[str, dataclasses.Field]:
    """The settings fields of ``cls``, after checking that ``mapping`` is a mapping of them only."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a mapping, got {mapping!r}")
    known = {f.name: f for f in settings_fields(cls)}
    unknown = sorted(set(mapping) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(known)}")
    return known


def _check_value(cls, known: dict, name: str, value, where: str) -> None:
    problem = _type_problem(_hints(cls)[name], value) or _bound_problem(known[name].metadata, value)
    if problem:
        raise ConfigError(f"{where}.{name}: {problem}")


def from_mapping(cls, mapping, where: str):
    """Build dataclass ``cls`` from a YAML mapping: absent keys take their defaults, unknown keys and wrong
    values are a :class:`ConfigError` naming ``where.key``; nested sections are built recursively."""
    mapping = {} if mapping is None else mapping
    known = _known_fields(cls, mapping, where)
    hints = _hints(cls)
    values = {}
    for name, value in mapping.items():
        inner = _dataclass_arm(hints[name])
        if inner is not None and (isinstance(value, dict) or value is None and inner is hints[name]):
            value = from_mapping(inner, value, f"{where}.{name}")
        else:
            _check_value(cls, known, name, value, where)
        values[name] = value
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        message, short = str(err), where.split(".", 1)[-1]
        named = message.startswith((where, short + ".", short + ":", short + " "))
        raise ConfigError(message if named else f"{where}: {message}") from err


def to_mapping(obj) -> dict:
    """The workflow-config mapping of dataclass ``obj`` (settings only, nested sections as mappings)."""
    out = {}
    for f in settings_fields(type(obj)):
        value = getattr(obj, f.name)
        out[f.name] = to_mapping(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- JSON schema


def _type_schema(tp) -> dict:
    if tp is Any:
        return {}
    if _is_union(tp):
        arms = _args(tp)
        if all(a in (int, float, str, bool, type(None)) for a in arms):
            return {"type": [_type_schema(a)["type"] for a in arms]}
        return {"anyOf": [_type_schema(a) for a in arms]}
    origin = typing.get_origin(tp)
    if tp is type(None):
        return {"type": "null"}
    if origin is Literal:
        return {"enum": list(_args(tp))}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if tp is dict:
        return {"type": "object"}
    if origin in (list, tuple):
        return {"type": "array", "items": _type_schema(_args(tp)[0]) if _args(tp) else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(_args(tp)[1]) if _args(tp) else {}}
    if dataclasses.is_dataclass(tp):
        return json_schema(tp)
    raise TypeError(f"no JSON schema for {tp!r}")


def _with_bounds(schema: dict, meta: dict) -> dict:
    bounds = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "pattern": "pattern"}
    extra = {bounds[k]: meta[k] for k in bounds if k in meta}
    if not extra and "min_items" not in meta:
        return schema
    schema = dict(schema)
    if schema.get("type") == "array":
        schema["items"] = {**schema["items"], **extra}
        if "min_items" in meta:
            schema["minItems"] = meta["min_items"]
    elif schema.get("type") == "object":
        schema["additionalProperties"] = {**schema["additionalProperties"], **extra}
    else:
        schema.update(extra)
    return schema


def json_schema(cls) -> dict:
    """The JSON schema of dataclass ``cls``'s settings: every key optional (YAML lists only what differs)."""
    hints = _hints(cls)
    properties = {}
    for f in settings_fields(cls):
        items = f.metadata.get("items")
        if items is not None:  # a list of mappings described by another dataclass
            schema = {"type": "array", "items": json_schema(items)}
        else:
            schema = _type_schema(hints[f.name])
        schema = _with_bounds(schema, f.metadata)
        properties[f.name] = {**schema, "description": f.metadata.get("help", "")}
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    return {"type": "object", "description": doc, "additionalProperties": False, "properties": properties}


def check_mapping(cls, mapping, where: str) -> None:
    """Check a mapping's keys and values against dataclass ``cls`` without building it (for mappings whose absent
    keys mean something else than the dataclass defaults); :class:`ConfigError` names ``where.key``."""
    known = _known_fields(cls, mapping, where)
    for name, value in mapping.items():
        _check_value(cls, known, name, value, where)

"""Response bodies without the response model's round trip, when that changes no byte.

FastAPI validates a route's return value into its `response_model` (building a model
object for every post, author, media item and rendition of a page) and then dumps those
objects to JSON: ~20 µs for a page of ten posts. Our views are plain dicts that already
have the model's shape, so the same bytes come from `orjson.dumps` of the dict itself.

`exact_dumper(model)` returns a function that gives those bytes only when it can show
they are the model's: every dict has exactly the model's fields, in its order (pydantic
dumps every field, defaults included, in declaration order; a dict missing a defaulted
field or carrying an extra one does not qualify), and every value has exactly its
field's type (`str`, `int`, `bool`, `None` where allowed, lists, nested models as dicts:
no subclass, no coercion pydantic would make). Otherwise it returns None, and the caller
takes FastAPI's path. It only handles models whose validation and dumping are that
simple: plain fields, no aliases, constraints, validators, serializers or computed
fields, no config; for any other model it returns None at once (`exact_dumper` gives no
dumper). orjson and pydantic write strings, ints, bools and nulls alike (compact, UTF-8,
the same escapes: tests/unit/test_fast_routes.py checks every code point), and both
refuse lone surrogates (then FastAPI's path reports it).

The check is generated as one Python expression per model (`_source`), so a page costs
a few µs of checks and one orjson call.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel

Dumper = Callable[[Any], bytes | None]

_SCALARS = {str: "str", int: "int", bool: "bool"}
_ALLOWED_CONFIG = {"title", "json_schema_extra"}


class _Unsupported(Exception):
    pass


def _plain_model(model: type[BaseModel]) -> None:
    if set(model.model_config) - _ALLOWED_CONFIG:
        raise _Unsupported(f"{model.__name__}: config {sorted(model.model_config)}")
    decorators = model.__pydantic_decorators__
    if any(
        getattr(decorators, kind)
        for kind in (
            "validators",
            "field_validators",
            "root_validators",
            "field_serializers",
            "model_serializers",
            "model_validators",
            "computed_fields",
        )
    ):
        raise _Unsupported(f"{model.__name__}: validators or serializers")
    if model.__pydantic_root_model__:
        raise _Unsupported(f"{model.__name__}: a root model")
    for name, info in model.model_fields.items():
        if (
            info.alias is not None
            or info.validation_alias is not None
            or info.serialization_alias is not None
            or info.metadata
            or info.default_factory is not None
            or info.exclude
            or info.discriminator is not None
        ):
            raise _Unsupported(f"{model.__name__}.{name}: aliases, constraints or defaults beyond a plain value")


class _Builder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[type[BaseModel], str] = {}
        self.scope: dict[str, Any] = {}

    def check(self, annotation: Any, var: str) -> str:
        """A Python expression that is true only if `var` is exactly of `annotation`'s type."""
        if annotation is type(None):
            return f"{var} is None"
        if annotation in _SCALARS:
            return f"type({var}) is {_SCALARS[annotation]}"
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            return "(" + " or ".join(self.check(a, var) for a in args) + ")"
        if origin is list and len(args) == 1:
            item = self.check(args[0], "x")
            return f"(type({var}) is list and all({item} for x in {var}))"
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return f"(type({var}) is dict and {self.model(annotation)}({var}))"
        raise _Unsupported(f"annotation {annotation!r}")

    def model(self, model: type[BaseModel]) -> str:
        name = self.names.get(model)
        if name is not None:
            return name
        _plain_model(model)
        name = self.names[model] = f"_is_{model.__name__}_{len(self.names)}"
        keys = tuple(model.model_fields)
        self.scope[f"{name}_keys"] = keys
        checks = [f"tuple(d) == {name}_keys"]
        for field, info in model.model_fields.items():
            checks.append(self.check(info.annotation, f"d[{field!r}]"))
        self.lines.append(f"def {name}(d):\n    return " + " and ".join(checks))
        return name


def exact_dumper(model: Any) -> Dumper | None:
    """The dumper for `model` (see the module docstring), or None if it is not that simple."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    builder = _Builder()
    try:
        top = builder.model(model)
    except _Unsupported:
        return None
    scope = dict(builder.scope)
    exec(compile("\n".join(builder.lines), f"<exact dumper of {model.__name__}>", "exec"), scope)
    is_exact: Callable[[Any], bool] = scope[top]
    dumps = orjson.dumps

    def dump(value: Any) -> bytes | None:
        if type(value) is not dict or not is_exact(value):
            return None
        try:
            return dumps(value)
        except TypeError:  # e.g. an int beyond 64 bits, a lone surrogate: pydantic decides
            return None

    return dump


def _source(model: Any) -> str:
    """The generated checks, for reading and for tests."""
    builder = _Builder()
    builder.model(model)
    return "\n".join(builder.lines)

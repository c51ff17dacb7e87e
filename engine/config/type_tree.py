"""Walking the config's type tree: the type behind a dotted path, and every leaf path.

Pure functions over pydantic models, given the root model to start from, so the
validators, the error messages and the search space all read the tree the same way.
"""

import types
import typing
from typing import Annotated, Any, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .problems import suggest_key

__all__ = ["field_type", "is_model", "leaf_paths", "resolve_path", "union_tags", "unwrap"]


def unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` to reach the type that matters."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def union_tags(model: type[BaseModel]) -> tuple:
    field = model.model_fields.get("type")
    return typing.get_args(field.annotation) if field else ()


def field_type(field: FieldInfo) -> Any:
    """The field's annotation with its constraints (ge, gt, ...) re-attached."""
    if field.metadata:
        return Annotated[(field.annotation, *field.metadata)]
    return field.annotation


def resolve_path(root: type[BaseModel], path: str) -> Any:
    """The type at a dotted path below ``root``; LookupError names the bad key.

    Dict-valued fields accept any key (``task.loss_weights.detection``).
    """
    segments = path.split(".")
    tp: Any = root
    for i, seg in enumerate(segments):
        base = unwrap(tp)
        prefix = ".".join(segments[:i])
        if is_model(base):
            field = base.model_fields.get(seg)
            if field is None:
                hint = suggest_key(seg, list(base.model_fields))
                what = "unknown key" if i == len(segments) - 1 else f"unknown key {seg!r}"
                if hint:
                    what += f" (did you mean {'.'.join(filter(None, (prefix, hint)))!r}?)"
                raise LookupError(what)
            tp = field_type(field)
        elif typing.get_origin(base) is dict and seg:
            tp = typing.get_args(base)[1]
        else:
            raise LookupError(f"{prefix!r} is a single setting, it has no key {seg!r}")
    return tp


def leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every leaf setting below ``model`` as a dotted path, in declaration order."""
    paths = []
    for name, field in model.model_fields.items():
        base = unwrap(field.annotation)
        if is_model(base):
            paths += leaf_paths(base, f"{prefix}{name}.")
        else:
            paths.append(prefix + name)
    return paths

"""What the app's form needs to edit one spec step: the transform's parameters and their choices."""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

from albumentations.core.transforms_interface import ImageOnlyTransform

from .catalogue import CONTAINERS, init_params, transform_class
from .errors import AugmentationSpecError
from .spec import plain_value

__all__ = ["describe_transform"]


def _choices(annotation: Any) -> list | None:
    """The allowed values when an annotation is a Literal (possibly optional)."""
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [c for arg in typing.get_args(annotation) for c in (_choices(arg) or [])]
        return found or None
    return None


def _default_for_form(value: Any) -> Any:
    if value is inspect.Parameter.empty:
        return None
    try:
        return plain_value(value, {})
    except AugmentationSpecError:
        return repr(value)


def describe_transform(name: str) -> dict:
    """What a form needs to edit one step.

    Returns {"name", "kind" ("image", "dual" or "container"), "doc" (first
    docstring line), "params": [{"name", "annotation" (str), "default",
    "required", "choices" (list or None)}]}.
    """
    cls = transform_class(name)
    schema = getattr(cls, "InitSchema", None)
    fields = schema.model_fields if schema is not None and name not in CONTAINERS else {}
    params = []
    for key, p in init_params(cls).items():
        annotation = p.annotation
        if annotation is inspect.Parameter.empty:
            annotation = fields[key].annotation if key in fields else "Any"
        params.append(
            {
                "name": key,
                "annotation": annotation if isinstance(annotation, str) else inspect.formatannotation(annotation),
                "default": _default_for_form(p.default),
                "required": p.default is inspect.Parameter.empty,
                "choices": _choices(fields[key].annotation) if key in fields else None,
            }
        )
    if name in CONTAINERS:
        kind = "container"
    elif issubclass(cls, ImageOnlyTransform):
        kind = "image"
    else:
        kind = "dual"
    doc = (inspect.getdoc(cls) or "").strip().splitlines()
    return {"name": name, "kind": kind, "doc": doc[0] if doc else "", "params": params}

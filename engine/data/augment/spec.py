"""Checking a spec step by step and normalising it to plain data; specs as YAML text."""

from __future__ import annotations

import difflib
import inspect
import re
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from .catalogue import CONTAINERS, NEEDS_MASK, check_task, init_params, supports, transform_class
from .errors import AugmentationSpecError

__all__ = ["build_steps", "plain_value", "spec_from_yaml", "spec_to_yaml", "validate_spec"]


def plain_value(value: Any, where: dict[str, Any]) -> Any:
    """``value`` as JSON/YAML-able data: tuples become lists, numpy scalars Python ones."""
    if isinstance(value, np.generic):  # before the float check: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_value(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: plain_value(v, where) for k, v in value.items()}
    raise AugmentationSpecError(
        f"{type(value).__name__} values cannot be stored in a spec; use numbers, strings, lists or dicts",
        **where,
    )


def _pydantic_error(err: ValidationError, cls: type, params: dict, where: dict) -> AugmentationSpecError:
    """Turn albumentations' pydantic error into one naming the first bad parameter."""
    errors = err.errors()
    loc = errors[0]["loc"]
    if loc:
        param = str(loc[0])
        # A union annotation reports one error per branch; keep them all for that parameter.
        msgs = [e["msg"] for e in errors if e["loc"] and str(e["loc"][0]) == param]
    else:
        # Model-level checks have no location: name the first parameter the message mentions.
        msgs = [errors[0]["msg"]]
        mentioned = [p for p in init_params(cls) if re.search(rf"\b{re.escape(p)}\b", msgs[0])]
        param = mentioned[0] if mentioned else "parameters"
    text = "; ".join(dict.fromkeys(m.removeprefix("Value error, ") for m in msgs))
    if param in params:
        text += f" (got {params[param]!r})"
    return AugmentationSpecError(text, param=param, **where)


def _build_step(step: Any, index: str, task: str | None) -> tuple[dict, Any]:
    """Validate one step; returns (normalised step, built transform)."""
    if not isinstance(step, dict):
        raise AugmentationSpecError(f"each step must be a mapping with a 'name', got {type(step).__name__}", step=index)
    name = step.get("name")
    cls = transform_class(name, step=index)
    where = {"step": index, "transform": name}
    _check_targets(cls, name, task, where)
    params = {k: v for k, v in step.items() if k != "name"}
    _check_param_names(cls, params, where)

    normal: dict[str, Any] = {"name": name}
    for key, value in params.items():
        if key == "transforms":
            continue
        normal[key] = plain_value(value, {**where, "param": key})
    if name in CONTAINERS:
        return _build_container(cls, normal, params["transforms"], index, task, where)
    return normal, _build_transform(cls, normal, where)


def _check_targets(cls: type, name: str | None, task: str | None, where: dict[str, Any]) -> None:
    """Refuse a transform that leaves the task's targets (boxes, masks) behind."""
    if task is not None and name not in CONTAINERS and not supports(cls, task):
        what = "masks" if task == "segmentation" else "boxes"
        if name in NEEDS_MASK:
            what = "a segmentation mask to run; it only works"
        raise AugmentationSpecError(f"cannot be used for {task}: it does not transform {what}", **where)


def _check_param_names(cls: type, params: dict[str, Any], where: dict[str, Any]) -> None:
    """Every parameter is one the transform takes, and every required one is there."""
    accepted = init_params(cls)
    for key in params:
        if key not in accepted:
            close = difflib.get_close_matches(key, list(accepted), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AugmentationSpecError(
                f"unknown parameter{hint} (accepted: {', '.join(accepted)})", param=key, **where
            )
    for key, p in accepted.items():
        if p.default is inspect.Parameter.empty and key not in params:
            raise AugmentationSpecError("required parameter is missing", param=key, **where)


def _build_container(
    cls: type, normal: dict[str, Any], children: Any, index: str, task: str | None, where: dict[str, Any]
) -> tuple[dict, Any]:
    """A container step (OneOf, SomeOf, ...): its child steps first, then the container."""
    if not isinstance(children, (list, tuple)) or not children:
        raise AugmentationSpecError("must be a non-empty list of steps", param="transforms", **where)
    built_children = [_build_step(c, f"{index}.{i}", task) for i, c in enumerate(children, 1)]
    normal["transforms"] = [c[0] for c in built_children]
    kwargs = {k: v for k, v in normal.items() if k not in ("name", "transforms")}
    # Containers have no pydantic schema, so check p ourselves: a bad p would pass silently.
    p = kwargs.get("p", 0.5)
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise AugmentationSpecError(f"must be a number between 0 and 1 (got {p!r})", param="p", **where)
    try:
        built = cls([c[1] for c in built_children], **kwargs)
    except (TypeError, ValueError) as err:
        raise AugmentationSpecError(str(err), **where) from err
    return normal, built


def _build_transform(cls: type, normal: dict[str, Any], where: dict[str, Any]) -> Any:
    kwargs = {k: v for k, v in normal.items() if k != "name"}
    try:
        # strict=True: without it albumentations only warns on a bad value and
        # silently falls back to the defaults.
        return cls(**kwargs, strict=True)
    except ValueError as err:
        if isinstance(err.__cause__, ValidationError):
            raise _pydantic_error(err.__cause__, cls, kwargs, where) from err
        raise AugmentationSpecError(str(err), **where) from err
    except TypeError as err:
        raise AugmentationSpecError(str(err), **where) from err


def build_steps(spec: Any, task: str | None) -> tuple[list[dict], list]:
    if isinstance(spec, dict) or not isinstance(spec, (list, tuple)):
        raise AugmentationSpecError(f"a spec must be a list of steps, got {type(spec).__name__}")
    built = [_build_step(step, str(i), task) for i, step in enumerate(spec, 1)]
    return [b[0] for b in built], [b[1] for b in built]


def validate_spec(spec: Any, *, task: str | None = None) -> list[dict]:
    """Check every step (building each transform once) and return the normalised spec.

    The result is a new plain list of dicts: "name" first, tuples as lists,
    nested container steps normalised too. With ``task``, also rejects
    transforms that cannot carry that task's boxes or masks.
    """
    if task is not None:
        check_task(task)
    return build_steps(spec, task)[0]


def spec_to_yaml(spec: Any) -> str:
    """The validated spec as YAML; the same spec always gives the same text."""
    # Key order is meaningful (name first) and keeps diffs of config files small.
    return yaml.safe_dump(validate_spec(spec), sort_keys=False, default_flow_style=None, allow_unicode=True)


def spec_from_yaml(text: str) -> list[dict]:
    """Parse and validate a spec written by :func:`spec_to_yaml` (or by hand)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise AugmentationSpecError(f"invalid YAML: {err}") from err
    return validate_spec([] if data is None else data)

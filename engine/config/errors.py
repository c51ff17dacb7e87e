"""ConfigError: every problem of a run configuration, named by file and dotted key.

Pydantic reports errors at locations that include entries nobody typed (a
union member's type, a discriminated union's tag); :meth:`ConfigError.
from_validation_error` turns them back into the keys a user wrote.
"""

import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from .problems import InvalidFields, brief, dotted, is_scalar, suggest_key
from .run_fields import RunFields, search_types
from .type_tree import is_model, union_tags, unwrap

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A run configuration that cannot be used.

    ``problems`` lists every ``(dotted path, message)`` found, so the app can
    mark each offending form field; ``source`` says where the input came from
    (a file name, with ``:line:column`` for YAML syntax errors).
    """

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        lines = []
        for path, message in self.problems:
            head = ": ".join(part for part in (self.source, path) if part)
            lines.append(f"{head}: {message}" if head else message)
        return "\n".join(lines) or "invalid configuration"

    @classmethod
    def from_validation_error(cls, exc: ValidationError, source: str | None = None) -> "ConfigError":
        """Translate pydantic's error list into user-facing paths and messages."""
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            for item in _problems_from_error(err):
                if item not in problems:
                    problems.append(item)
        return cls(problems, source)


_NO_INPUT_ERRORS = {"missing", "extra_forbidden"}


def _problems_from_error(err: ErrorDetails) -> list[tuple[str, str]]:
    parts, owner = _user_path(err["loc"])
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, InvalidFields):
        return [(dotted(parts + list(rel)), message) for rel, message in cause.problems]
    if err["type"] == "union_tag_not_found":  # only SearchParam is a tagged union
        return [(dotted(parts + ["type"]), f"required: one of {search_types()}")]
    if err["type"] == "extra_forbidden":
        hint = suggest_key(str(parts[-1]), list(owner.model_fields)) if owner else None
        return [(dotted(parts), "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))]
    message = str(cause) if isinstance(cause, ValueError) else err["msg"]
    if err["type"] not in _NO_INPUT_ERRORS and is_scalar(err.get("input")):
        message += f" (got {brief(err['input'])})"
    return [(dotted(parts), message)]


def _user_path(loc: tuple) -> tuple[list, type[BaseModel] | None]:
    """Turn pydantic's error location into the keys a user actually wrote.

    Pydantic adds entries nobody typed: the tag of a discriminated-union member
    ('loguniform'), the member type of other unions ('int') and '[key]' for dict
    key errors. We walk the config's type tree alongside the location to drop
    them, and return the model owning the last key (for spelling suggestions).
    """
    parts: list = []
    tp: Any = RunFields
    owner = None
    for seg in loc:
        tp = unwrap(tp)
        if is_model(tp):
            owner = tp
            parts.append(seg)
            field = tp.model_fields.get(seg)
            tp = field.annotation if field else None
        elif typing.get_origin(tp) in (Union, types.UnionType):
            members = [unwrap(m) for m in typing.get_args(tp)]
            tagged = [m for m in members if is_model(m) and seg in union_tags(m)]
            tp = tagged[0] if tagged else None
        elif seg == "[key]":
            continue
        else:
            parts.append(seg)
            args = typing.get_args(tp)
            if typing.get_origin(tp) is dict:
                tp = args[1]
            elif typing.get_origin(tp) is list:
                tp = args[0]
            else:
                tp = None
    return parts, owner

"""The run form as a Qt-free model, generated from ``engine.config``'s JSON schema.

Each leaf of the sections shown (Task, Model, Data, Optimisation, Compute, Tracking)
becomes a :class:`FieldSpec` whose kind picks the editor: ``enum`` (combo box),
``bool`` (check box), ``tristate`` (an optional bool: default / on / off), ``int`` and
``float`` with bounds (spin box), ``path`` (line edit + Browse), ``text`` (line edit;
numbers, lists and mappings are typed as YAML, e.g. ``[a, b]`` or ``{a: 1}``).  A field
added to the config therefore shows up in the form without an app change.

:meth:`RunFormModel.validate` builds a ``RunConfig`` and turns a ``ConfigError`` into
``{field path: message}``, so the view puts the config's own message at the field it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .target_model import TARGET_FIELDS

SECTIONS = (
    ("task", "Task"),
    ("model", "Model"),
    ("data", "Data"),
    ("optim", "Optimisation"),
    ("compute", "Compute"),
    ("tracking", "Tracking"),
)
PATH_KEYS = ("path", "folder", "dir")


@dataclass
class FieldSpec:
    path: str  # dotted, e.g. "optim.lr"
    section: str  # title of its section
    title: str
    description: str
    kind: str  # enum | bool | tristate | int | float | path | text
    default: Any = None
    nullable: bool = False
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if ref:
        return {**schema["$defs"][ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _alternatives(node: dict) -> tuple[list[dict], bool]:
    options = node.get("anyOf") or node.get("oneOf") or [node]
    nullable = any(o.get("type") == "null" for o in options)
    return [o for o in options if o.get("type") != "null"], nullable


def _bounds(option: dict, integer: bool) -> tuple[float | None, float | None]:
    low, high = option.get("minimum"), option.get("maximum")
    step = 1 if integer else 1e-12
    if low is None and option.get("exclusiveMinimum") is not None:
        low = option["exclusiveMinimum"] + step
    if high is None and option.get("exclusiveMaximum") is not None:
        high = option["exclusiveMaximum"] - step
    return low, high


def field_from_schema(path: str, section: str, node: dict, required: bool = False) -> FieldSpec:
    """The editor for one schema property."""
    options, nullable = _alternatives(node)
    key = path.rsplit(".", 1)[-1]
    spec = FieldSpec(
        path,
        section,
        node.get("title") or key,
        node.get("description", ""),
        "text",
        node.get("default"),
        nullable,
        required=required,
    )
    choices = []
    for option in options:
        if "enum" in option:
            choices += option["enum"]
        elif "const" in option:
            choices.append(option["const"])
    if options and all("enum" in o or "const" in o for o in options):
        spec.kind, spec.choices = "enum", tuple(choices)
    elif len(options) == 1 and options[0].get("type") == "boolean":
        spec.kind = "tristate" if nullable else "bool"
    elif len(options) == 1 and options[0].get("type") in ("integer", "number"):
        integer = options[0]["type"] == "integer"
        spec.minimum, spec.maximum = _bounds(options[0], integer)
        if spec.minimum is not None or spec.maximum is not None:
            spec.kind = "int" if integer else "float"
    elif len(options) == 1 and options[0].get("type") == "string" and any(k in key for k in PATH_KEYS):
        spec.kind = "path"
    return spec


def form_fields(schema: dict | None = None) -> list[FieldSpec]:
    """Every leaf of the form's sections, in the schema's order."""
    if schema is None:
        from engine.config import json_schema

        schema = json_schema()
    fields: list[FieldSpec] = []
    for name, title in SECTIONS:
        section = _resolve(schema, schema["properties"][name])
        required = set(section.get("required", ()))
        for key, node in section.get("properties", {}).items():
            if f"{name}.{key}" in TARGET_FIELDS:  # the "Where to run" panel shows these
                continue
            fields.append(field_from_schema(f"{name}.{key}", title, _resolve(schema, node), key in required))
    return fields


def parse_text(text: str) -> Any:
    """What a text field holds: empty -> None, otherwise a YAML scalar, list or mapping."""
    text = text.strip()
    if not text:
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_number(text: str) -> Any:
    """What a number field holds: empty -> None, a number when the text is one, else the text itself.

    The text is kept as typed ("abc", "1e-3.5") so the config rejects it with its own message at
    the field, instead of the form replacing it with something else.
    """
    text = text.strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def format_number(value: Any) -> str:
    """The text a number field shows for ``value``: 3e-4 as 0.0003, 1e-5 as 1e-05, text as it is."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_value(value: Any) -> str:
    """The text a text field shows for ``value`` (the inverse of :func:`parse_text`)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        if not value:
            return ""
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return str(value)


class RunFormModel:
    """The form's values (``{dotted path: value}``), validated by the config itself."""

    def __init__(self, fields: list[FieldSpec] | None = None) -> None:
        self.fields = fields if fields is not None else form_fields()
        self.by_path = {f.path: f for f in self.fields}
        self.values: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}  # config parts the form does not show (augmentation, workspace, ...)
        self.reset()

    def reset(self) -> None:
        self.values = {}
        computed = None
        for f in self.fields:
            value = f.default
            if value is None and f.required and f.kind == "enum":
                value = f.choices[0]
            if value is None and not f.nullable:
                # A default computed when the config is made (loader workers from this machine's
                # CPUs) has none in the schema: show the value the run would really get.
                computed = computed or _computed_defaults()
                value = computed.get(f.path)
            if isinstance(value, (list, dict)) and not value:
                value = None
            self.values[f.path] = value
        self.extra = {}

    def set(self, path: str, value: Any) -> None:
        if path not in self.by_path:
            raise KeyError(f"the run form has no field {path!r}")
        self.values[path] = value

    def data(self) -> dict[str, Any]:
        """Nested plain data for ``RunConfig.from_dict`` (empty optional fields left out)."""
        out: dict[str, Any] = {k: v for k, v in self.extra.items()}
        for path, value in self.values.items():
            if value is None:
                continue
            section, key = path.split(".", 1)
            out.setdefault(section, {})[key] = value
        return out

    def validate(self):
        """``(RunConfig or None, {field path or "": message})``."""
        from engine.config import ConfigError, RunConfig

        # An emptied number field the config has a default for would silently take that default.
        missing = {
            f.path: "required: type a number"
            for f in self.fields
            if f.kind in ("int", "float") and not f.nullable and self.values.get(f.path) is None
        }
        try:
            config = RunConfig.from_dict(self.data(), "run form")
        except ConfigError as exc:
            return None, {**self._size_problem(), **self.problems_by_field(exc.problems), **missing}
        return (None, missing) if missing else (config, {})

    def _size_problem(self) -> dict[str, str]:
        """The image-size rule's message even while another field is wrong.

        The config checks the size against the model only once every field is valid (pydantic
        runs whole-config checks last), so a bad learning rate would hide it until fixed.
        """
        from engine.catalog.input_size import image_size_problem
        from engine.config import DEFAULT_CHECKPOINTS

        size, task = self.values.get("data.image_size"), self.values.get("task.name")
        if not isinstance(size, int) or isinstance(size, bool) or task not in DEFAULT_CHECKPOINTS:
            return {}
        problem = image_size_problem(self.values.get("model.checkpoint") or DEFAULT_CHECKPOINTS[task], size)
        return {"data.image_size": problem} if problem else {}

    def problems_by_field(self, problems: list[tuple[str, str]]) -> dict[str, str]:
        """Each problem at the deepest form field its dotted path names ("" when none)."""
        out: dict[str, str] = {}
        for path, message in problems:
            target = ""
            parts = path.split(".") if path else []
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in self.by_path:
                    target = candidate
                    break
            if target and target != path:
                message = f"{path[len(target) + 1 :]}: {message}"
            elif not target and path:
                message = f"{path}: {message}"
            out[target] = f"{out[target]}; {message}" if target in out else message
        return out

    def load_config(self, config) -> None:
        """Show ``config`` (a RunConfig): its values in the fields, the rest kept as is."""
        data = config.model_dump(mode="json")
        self.reset()
        for f in self.fields:
            section, key = f.path.split(".", 1)
            value = data.get(section, {}).get(key)
            self.values[f.path] = None if isinstance(value, (list, dict)) and not value else value
        shown = {name for name, _ in SECTIONS}
        self.extra = {k: v for k, v in data.items() if k not in shown and v is not None}

    def remembered(self) -> dict[str, Any]:
        """The fields' values as plain data, to restore this form later (see form_memory)."""
        return dict(self.values)

    def restore(self, values: dict[str, Any]) -> None:
        """Put back values from :meth:`remembered`; fields the form no longer has are skipped."""
        self.reset()
        for path, value in values.items():
            if path in self.by_path:
                self.values[path] = value


def _computed_defaults() -> dict[str, Any]:
    """Every field's value in a config made with nothing set, by dotted path."""
    from engine.config import RunConfig

    data = RunConfig.from_dict({"task": {"name": "classification"}}).model_dump(mode="json")
    return {
        f"{section}.{key}": value
        for section, fields in data.items()
        if isinstance(fields, dict)
        for key, value in fields.items()
    }

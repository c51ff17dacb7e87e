"""The search-space form as a Qt-free model, generated from ``engine.config``'s search schema.

The form has two parts, both read from the JSON schema the run form is read from:

* the search's own settings (trials, scheduler, ASHA's grace period and reduction factor,
  metric and goal, parallel trials, CPUs and GPUs per trial): one :class:`FieldSpec` each,
  the run form's editors;
* the space: each tunable setting (``engine.config.tunable_field_paths``) is fixed (it keeps
  the run form's value) or searched, with one of the distributions the schema's
  ``SearchParam`` union names (loguniform, uniform, quniform, randint, choice, grid) and
  that distribution's own fields (low, high, q or values).

:meth:`SearchFormModel.validate` builds the ``search:`` section into a ``RunConfig``, as
``lightbox tune`` does, and turns each ``ConfigError`` problem into a message at the field it
names: ``"num_samples"``, ``entry_key("optim.lr")`` (the entry as a whole, e.g. "not a
tunable setting") or ``entry_key("optim.lr", "low")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .form_model import FieldSpec, field_from_schema

SPACE = "space"
#: The main validation score of each task, higher is better (the task modules' ``monitor``);
#: a search ranks its trials by it unless the user picks another metric.
TASK_SCORES = {"classification": "val/accuracy", "detection": "val/map", "segmentation": "val/miou"}
LOSS_METRIC = ("val/loss", "min")
#: The sections whose settings a search varies most often, in the order "Search" offers them.
SEARCHED_MOST = ("optim", "model", "augmentation", "data", "compute")
NO_SPACE = "search at least one setting: add one under Search space (the others keep the run form's values)"
_ENTRY = re.compile(r'^search\.space(?:\["([^"]+)"\]|\.([^.\[]+))(.*)$')


def entry_key(path: str, part: str | None = None) -> str:
    """The problem key of a space entry (``part`` None) or of one of its fields."""
    return f"{SPACE}:{path}" + (f":{part}" if part else "")


@dataclass
class Distribution:
    """One kind of search distribution and the fields it takes (besides ``type``)."""

    kind: str
    title: str
    description: str
    fields: list[FieldSpec]


@dataclass
class SearchedSetting:
    """One entry of the space: a setting, its distribution's kind and that kind's values."""

    path: str
    kind: str
    values: dict[str, Any] = field(default_factory=dict)  # low / high / q / values

    def data(self) -> dict[str, Any]:
        return {"type": self.kind, **{k: v for k, v in self.values.items() if v is not None}}


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    return {**schema["$defs"][ref.rsplit("/", 1)[-1]], **node} if ref else node


def distributions(schema: dict) -> dict[str, Distribution]:
    """Every distribution the space takes, from the schema's tagged union, in the schema's order."""
    section = _resolve(schema, schema["$defs"]["SearchConfig"])
    union = section["properties"][SPACE]["additionalProperties"]
    out: dict[str, Distribution] = {}
    for option in union["oneOf"]:
        model = _resolve(schema, option)
        tag = model["properties"]["type"]
        for kind in tag.get("enum") or [tag.get("const")]:
            fields = [
                field_from_schema(key, "search space", _resolve(schema, node), key in model.get("required", ()))
                for key, node in model["properties"].items()
                if key != "type"
            ]
            out[kind] = Distribution(kind, kind, tag.get("description", ""), fields)
    return out


def setting_fields(schema: dict) -> list[FieldSpec]:
    """The search section's own settings (all but the space), in the schema's order."""
    section = _resolve(schema, schema["$defs"]["SearchConfig"])
    return [
        field_from_schema(key, section.get("title", "search"), _resolve(schema, node))
        for key, node in section["properties"].items()
        if key != SPACE
    ]


def tunable_specs(schema: dict) -> dict[str, FieldSpec]:
    """Dotted path -> the editor spec of every setting a search may vary (its type and bounds).

    A number without bounds (a seed) is a text field in the run form; here it is a number all
    the same: its ``kind`` says ``int`` or ``float`` from the schema's type."""
    from engine.config import tunable_field_paths

    out = {}
    for path in tunable_field_paths():
        section, key = path.split(".", 1)
        owner = _resolve(schema, schema["properties"][section])
        node = _resolve(schema, owner["properties"][key])
        spec = field_from_schema(path, owner.get("title", section), node)
        options = [o for o in (node.get("anyOf") or [node]) if o.get("type") != "null"]
        if spec.kind == "text" and len(options) == 1 and options[0].get("type") in ("integer", "number"):
            spec.kind = "int" if options[0]["type"] == "integer" else "float"
        out[path] = spec
    return out


def metric_presets(task: str | None) -> list[tuple[str, str]]:
    """The metrics a search of ``task`` is ranked by, as ``(metric, mode)``: its score first, then the loss."""
    score = TASK_SCORES.get(task or "")
    return ([(score, "max")] if score else []) + [LOSS_METRIC]


def parse_values(text: str) -> Any:
    """A choice's values as typed: ``8, 16, 32`` or ``[8, 16, 32]`` (YAML); empty -> None."""
    text = text.strip()
    if not text:
        return None
    for candidate in (text, f"[{text}]"):
        try:
            value = yaml.safe_load(candidate)
        except yaml.YAMLError:
            continue
        if isinstance(value, list):
            return value
    return text  # kept as typed: the config says what is wrong with it


def format_values(values: Any) -> str:
    if values is None:
        return ""
    if isinstance(values, list):
        return ", ".join(yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip() for v in values)
    return str(values)


class SearchFormModel:
    """The search form's values, validated by the config itself."""

    def __init__(self, schema: dict | None = None) -> None:
        if schema is None:
            from engine.config import json_schema

            schema = json_schema()
        self.fields = setting_fields(schema)
        self.by_name = {f.path: f for f in self.fields}
        self.distributions = distributions(schema)
        self.tunable = tunable_specs(schema)
        self.values: dict[str, Any] = {}
        self.space: dict[str, SearchedSetting] = {}
        self.metric_chosen = False  # the user picked the metric: a new task no longer presets it
        self.reset()

    # ------------------------------------------------------------------ values
    def reset(self) -> None:
        self.values = {f.path: f.default for f in self.fields}
        self.space = {}
        self.metric_chosen = False

    def set(self, name: str, value: Any) -> None:
        if name not in self.by_name:
            raise KeyError(f"the search form has no setting {name!r}")
        self.values[name] = value
        if name in ("metric", "mode"):
            self.metric_chosen = True

    def follow_task(self, task: str | None) -> None:
        """Preset the metric and goal from the run form's task, unless the user chose them."""
        if not self.metric_chosen:
            self.values["metric"], self.values["mode"] = metric_presets(task)[0]

    def choose_metric(self, metric: str, task: str | None) -> None:
        """The user picked ``metric``: a preset's goal comes with it."""
        self.set("metric", metric)
        mode = dict(metric_presets(task)).get(metric)
        if mode is not None:
            self.values["mode"] = mode

    def searchable(self) -> list[str]:
        """Tunable settings not searched yet, the ones searched most first (optimisation, then model,
        augmentation, data and compute), each section in the schema's order."""
        rank = {section: i for i, section in enumerate(SEARCHED_MOST)}
        free = [p for p in self.tunable if p not in self.space]
        return sorted(free, key=lambda p: rank.get(p.split(".", 1)[0], len(rank)))

    def add(self, path: str, run_value: Any = None) -> SearchedSetting:
        """Search ``path``, starting from a distribution that suits its type around ``run_value``."""
        if path not in self.tunable:
            raise KeyError(f"{path!r} is not a setting a search may vary")
        entry = self.space.get(path) or _first_guess(path, self.tunable[path], run_value)
        self.space[path] = entry
        return entry

    def remove(self, path: str) -> None:
        self.space.pop(path, None)

    def set_kind(self, path: str, kind: str) -> None:
        """Change an entry's distribution, keeping the values the new one also takes."""
        entry = self.space[path]
        names = [f.path for f in self.distributions[kind].fields] if kind in self.distributions else []
        entry.kind = kind
        entry.values = {name: entry.values.get(name) for name in names}
        if "values" in names and entry.values["values"] is None:
            spec = self.tunable[path]
            flags = [True, False] if spec.kind in ("bool", "tristate") else None
            entry.values["values"] = list(spec.choices) or flags

    def set_value(self, path: str, name: str, value: Any) -> None:
        self.space[path].values[name] = value

    # ------------------------------------------------------------------ the section
    def section(self) -> dict[str, Any]:
        """The ``search:`` section as plain data (what a YAML file holds)."""
        out: dict[str, Any] = {SPACE: {p: e.data() for p, e in self.space.items()}}
        out.update({k: v for k, v in self.values.items() if v is not None})
        return out

    def validate(self, run_data: dict[str, Any] | None = None):
        """``(RunConfig with this search or None, {problem key: message})``.

        The section is checked on its own first (its fields' messages do not wait for the run
        form), then with the run form's data, when given, into the config ``lightbox tune`` reads.
        """
        from engine.config import ConfigError, RunConfig

        missing = {
            f.path: "required: type a number"
            for f in self.fields
            if f.kind in ("int", "float") and self.values.get(f.path) is None
        }
        if not self.space:
            missing[SPACE] = NO_SPACE
        task = (run_data or {}).get("task") or {"name": "classification"}
        # The settings, then each entry on its own: the config stops at the first entry it cannot
        # read, and a form shows every field's problem at once.
        parts = [{k: v for k, v in self.section().items() if k != SPACE}]
        parts += [{SPACE: {path: entry.data()}} for path, entry in self.space.items()]
        problems: dict[str, str] = {}
        for part in parts:
            try:
                RunConfig.from_dict({"task": task, "search": part}, "search form")
            except ConfigError as exc:
                problems.update(self.problems_by_field(exc.problems))
        problems.update(missing)
        if problems or run_data is None:
            return None, problems
        try:
            return RunConfig.from_dict({**run_data, "search": self.section()}, "run form"), {}
        except ConfigError as exc:
            own = [(p, m) for p, m in exc.problems if p.startswith("search")]
            return None, self.problems_by_field(own) if own else {"": "fix the run form's fields first"}

    def apply_to(self, config):
        """``config`` (the run form's RunConfig) with this search; ConfigError as ``lightbox tune`` says it."""
        from engine.config import RunConfig

        return RunConfig.from_dict({**config.model_dump(mode="json"), "search": self.section()}, "search form")

    def problems_by_field(self, problems: list[tuple[str, str]]) -> dict[str, str]:
        """Each of the config's problems at the search form's field it names ("" when none)."""
        out: dict[str, str] = {}
        for path, message in problems:
            key = ""
            entry = _ENTRY.match(path)
            if entry:
                setting, rest = entry.group(1) or entry.group(2), entry.group(3)
                part = re.match(r"^\.(\w+)", rest)
                key = entry_key(setting, part.group(1) if part else None)
                if part and rest[part.end() :]:  # an item of a list: say which
                    message = f"{rest[part.end() :].strip('.')}: {message}"
            elif path.startswith("search."):
                name = path.split(".")[1]
                key = name if name in self.by_name else ""
            out[key] = f"{out[key]}; {message}" if key in out else message
        return out

    def load(self, search) -> None:
        """Show a config's ``search`` section (a SearchConfig, or None for none)."""
        self.reset()
        if search is None:
            return
        data = search.model_dump(mode="json")
        for name in self.values:
            self.values[name] = data.get(name)
        for path, param in data.get(SPACE, {}).items():
            kind = param.pop("type")
            self.space[path] = SearchedSetting(path, kind, dict(param))
        self.metric_chosen = True  # the file's choice, kept when the task changes


def _first_guess(path: str, spec: FieldSpec, value: Any) -> SearchedSetting:
    """A valid starting distribution for ``path`` around the run form's ``value``."""
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    low, high = spec.minimum, spec.maximum
    if spec.kind == "float":
        if number is not None and number > 0:  # a decade either side, on a log scale
            # Under a bound: half-way to it (a label smoothing of 0.1 must stay below 1).
            top = number * 10 if high is None or number * 10 < high else number + (high - number) / 2
            return SearchedSetting(path, "loguniform", {"low": number / 10, "high": top})
        if low is not None and 0 < low < 1e-6:  # above 0 (its bound is exclusive), nothing set: small, on a log scale
            return SearchedSetting(path, "loguniform", {"low": 1e-4, "high": 1e-2 if high is None else min(1e-2, high)})
        start = float(low or 0)
        return SearchedSetting(path, "uniform", {"low": start, "high": float(high) if high is not None else start + 1})
    if spec.kind == "int":
        centre = int(number) if number is not None else int(low or 0)
        start = max(centre // 2, int(low) if low is not None else 0)
        stop = max(centre * 2 + 1, start + (10 if centre == 0 else 2))  # randint's high is exclusive
        if high is not None:
            stop = min(stop, int(high) + 1)
        return SearchedSetting(path, "randint", {"low": start, "high": stop})
    if spec.kind == "enum":
        return SearchedSetting(path, "choice", {"values": list(spec.choices)})
    if spec.kind in ("bool", "tristate"):
        return SearchedSetting(path, "choice", {"values": [True, False]})
    return SearchedSetting(path, "choice", {"values": [value] if value is not None else None})

"""Command-line flags that override a run configuration, generated from its schema.

Every setting of ``RunConfig`` is a flag named by its dotted key (``--optim.lr 0.01``,
``--compute.num_workers 4``), typed, restricted and described from the config's JSON
schema as the app's run form is; a setting added to the config is therefore a flag of
``lightbox train``, ``tune`` and ``lr-find`` alike, with no change here. The short flags
typed most (``--lr``, ``--data``, ``--epochs``, ...) name the same settings. The search
section's flags belong to ``lightbox tune``. Flags win over the ``--config`` file.
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from typing import Any

#: short flags (as argparse destinations) -> the dotted key each one sets
SHORT_FLAGS: dict[str, str] = {
    "data": "data.path",
    "task": "task.name",
    "model": "model.checkpoint",
    "epochs": "optim.epochs",
    "max_steps": "optim.max_steps",
    "batch_size": "optim.batch_size",
    "lr": "optim.lr",
    "image_size": "data.image_size",
    "num_workers": "data.num_workers",
    "devices": "compute.devices",
    "accelerator": "compute.accelerator",
    "precision": "optim.precision",
    "run_name": "tracking.run_name",
    "tracking_uri": "tracking.uri",
    "workspace": "workspace",
    "num_samples": "search.num_samples",
    "max_concurrent": "search.max_concurrent",
    "scheduler": "search.scheduler",
}
#: the section whose flags only ``lightbox tune`` takes
SEARCH_SECTION = "search"
#: settings that are no flag: the file format's version
NOT_FLAGS = ("version",)
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class RunFlag:
    key: str  # dotted config key, e.g. "optim.lr"
    dest: str  # argparse destination: the short flag's name where there is one, else the key
    options: tuple[str, ...]  # e.g. ("--lr", "--optim.lr")
    arguments: dict[str, Any] = field(default_factory=dict)  # type, choices, help, metavar

    @property
    def search(self) -> bool:
        return self.key.split(".", 1)[0] == SEARCH_SECTION


def boolean(text: str) -> bool:
    """``true``/``false`` (also yes/no, on/off, 1/0) as typed after a flag."""
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def yaml_value(text: str) -> Any:
    """A value typed as YAML (``[a, b]``, ``{a: 1}``, ``2``, ``auto``), as the app's form reads text fields."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"not a YAML value: {text!r} ({str(exc).splitlines()[0]})") from None


_TYPES = {"integer": int, "number": float, "boolean": boolean, "string": str}


def _resolve(schema: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if ref:
        return {**schema["$defs"][ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _alternatives(schema: dict, node: dict) -> list[dict]:
    """The kinds of value a setting takes, None left out."""
    options = node.get("anyOf") or node.get("oneOf") or [node]
    return [_resolve(schema, o) for o in options if o.get("type") != "null"]


def _leaves(schema: dict, node: dict, prefix: str = ""):
    """``(dotted key, schema node)`` of every setting, in the schema's order."""
    for name, child in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        options = _alternatives(schema, _resolve(schema, child))
        if len(options) == 1 and "properties" in options[0]:
            yield from _leaves(schema, options[0], key + ".")
        elif key not in NOT_FLAGS:
            yield key, _resolve(schema, child)


def _argparse_arguments(schema: dict, node: dict) -> dict[str, Any]:
    """type / choices / metavar of a setting's flag, from its schema."""
    options = _alternatives(schema, node)
    if options and all("enum" in o or "const" in o for o in options):
        choices = [v for o in options for v in (o["enum"] if "enum" in o else [o["const"]])]
        if all(isinstance(c, str) for c in choices):
            return {"choices": choices}
    metavar = "|".join(dict.fromkeys(_metavar(o) for o in options))
    kinds = {o.get("type") for o in options}
    if len(options) != 1 or kinds - {"integer", "number", "boolean", "string"}:
        return {"type": yaml_value, "metavar": metavar}  # lists, mappings, and settings of several kinds
    return {"type": _TYPES[kinds.pop()], "metavar": metavar}


def _metavar(option: dict) -> str:
    if "enum" in option or "const" in option:
        return "|".join(str(v) for v in option.get("enum") or [option["const"]])
    return {"integer": "N", "number": "X", "boolean": "true|false", "string": "TEXT"}.get(option.get("type"), "YAML")


@functools.lru_cache(maxsize=1)
def run_flags() -> tuple[RunFlag, ...]:
    """One flag per setting of ``RunConfig``, from its JSON schema (made once per process)."""
    from engine.config import json_schema

    schema = json_schema()
    short_of = {key: short for short, key in SHORT_FLAGS.items()}
    flags = []
    for key, node in _leaves(schema, schema):
        short = short_of.get(key)
        options = (("--" + short.replace("_", "-"),) if short else ()) + (("--" + key,) if key != short else ())
        description = (node.get("description") or node.get("title") or "").replace("%", "%%")
        arguments = {**_argparse_arguments(schema, node), "help": description}
        flags.append(RunFlag(key, short or key, options, arguments))
    return tuple(flags)


def add_run_flags(parser: argparse.ArgumentParser, *, search: bool = False, **reworded: str) -> None:
    """Add ``--config`` and a flag for every run setting to a verb's parser.

    ``search``: also the search section's flags (``lightbox tune``); ``reworded``: the help text
    of a flag in this verb, by its destination (``config``, ``epochs``, ``run_name``, ...).
    """
    parser.add_argument("--config", help=reworded.get("config", "run configuration YAML (flags override it)"))
    for flag in run_flags():
        if flag.search and not search:
            continue
        arguments = dict(flag.arguments)
        if flag.dest in reworded:
            arguments["help"] = reworded[flag.dest]
        parser.add_argument(*flag.options, dest=flag.dest, **arguments)


def config_from_flags(args: argparse.Namespace):
    """The run configuration from ``--config`` and/or the flags the verb defines."""
    from engine.config import RunConfig

    if args.config:
        config = RunConfig.load(args.config)
    elif getattr(args, "task", None):
        config = RunConfig.from_dict({"task": {"name": args.task}})
    else:
        raise ValueError("give --config run.yaml, or --data DIR and --task")
    overrides = {
        flag.key: getattr(args, flag.dest)
        for flag in run_flags()
        if getattr(args, flag.dest, None) is not None and flag.key != "task.name"
    }
    if args.config and getattr(args, "task", None):
        overrides["task.name"] = args.task
    return config.with_overrides(overrides) if overrides else config


__all__ = ["RunFlag", "SHORT_FLAGS", "add_run_flags", "boolean", "config_from_flags", "run_flags", "yaml_value"]

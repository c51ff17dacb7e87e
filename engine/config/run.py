"""RunConfig: the run's fields (:mod:`engine.config.run_fields`) read from and written to
YAML, and copied with overrides (how a search rewrites a run)."""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import ConfigError
from .run_fields import RunFields, resolve
from .task_defaults import DEFAULT_CHECKPOINTS
from .yaml_io import dump_yaml, parse_yaml, write_atomically

__all__ = ["RunConfig", "json_schema"]


class RunConfig(RunFields):
    """Everything needed to reproduce one training run (or one search)."""

    # ----------------------------------------------------------------- loading

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> "RunConfig":
        """Validate plain data (e.g. parsed YAML); any problem raises ConfigError."""
        if not isinstance(data, Mapping):
            kind = "nothing" if data is None else type(data).__name__
            raise ConfigError([("", f"expected a mapping of sections (data:, task:, ...), got {kind}")], source)
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError.from_validation_error(exc, source) from None

    @classmethod
    def from_yaml(cls, path_or_text: "str | os.PathLike[str]", *, source: str | None = None) -> "RunConfig":
        """Load from a file path or from YAML text.

        A ``Path``, or a one-line string naming an existing file or ending in
        .yaml/.yml, is read as a file; anything else is parsed as YAML text
        (``source`` then names it in error messages).
        """
        if isinstance(path_or_text, os.PathLike):
            return cls.load(path_or_text)
        text = path_or_text
        if "\n" not in text and (text.endswith((".yaml", ".yml")) or Path(text).is_file()):
            return cls.load(text)
        return cls.from_dict(parse_yaml(text, source), source)

    @classmethod
    def load(cls, path: "str | os.PathLike[str]") -> "RunConfig":
        """Read a YAML config file; ConfigError names the file on any problem."""
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([("", f"cannot read the file: {exc.strerror or exc}")], name) from None
        except UnicodeDecodeError:
            raise ConfigError([("", "not a text file (it is not valid UTF-8)")], name) from None
        return cls.from_dict(parse_yaml(text, name), name)

    # ----------------------------------------------------------------- saving

    def to_yaml(self) -> str:
        """Stable YAML text: sections in declaration order, JSON-compatible values."""
        return dump_yaml(self.model_dump(mode="json"))

    def save(self, path: "str | os.PathLike[str]") -> Path:
        """Write the config atomically: readers see the old file or the new one, never half of one."""
        path = Path(path)
        text = self.to_yaml()  # serialise before touching the disk
        write_atomically(path, text)
        return path

    # ----------------------------------------------------------------- overrides

    def with_overrides(self, overrides: Mapping[str, Any]) -> "RunConfig":
        """A validated copy with ``{"optim.lr": 3e-4, ...}`` applied; ConfigError on any bad path or value."""
        data = self.model_dump()
        _forget_default_checkpoints(data)
        problems = []
        for path, value in overrides.items():
            try:
                resolve(path)
            except LookupError as exc:
                problems.append((path, str(exc)))
                continue
            # Search libraries hand out numpy scalars; keep the config plain Python.
            if type(value).__module__ == "numpy" and hasattr(value, "item"):
                value = value.item()
            node = data
            *parents, leaf = path.split(".")
            for key in parents:
                if not isinstance(node.get(key), dict):
                    node[key] = {}  # e.g. search.num_samples while search is empty
                node = node[key]
            node[leaf] = value
        if problems:
            raise ConfigError(problems, "overrides")
        return type(self).from_dict(data, "overrides")


def _forget_default_checkpoints(data: dict) -> None:
    """Blank checkpoints that are just the task default, so validation re-derives them.

    Otherwise overriding ``task.name`` would keep the old task's default model.
    """
    model, task = data["model"], data["task"]
    if model.get("checkpoint") == DEFAULT_CHECKPOINTS.get(task["name"]):
        model["checkpoint"] = None
    model["checkpoints"] = {t: c for t, c in model["checkpoints"].items() if DEFAULT_CHECKPOINTS.get(t) != c}


def json_schema() -> dict:
    """JSON schema of RunConfig, from which the app builds its forms."""
    return RunConfig.model_json_schema()

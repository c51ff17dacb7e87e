"""The run form's last values per dataset, so reopening a dataset brings its form back (Qt-free).

One small JSON file in the workspace, beside ``settings.ini``: ``{"datasets": {folder: {"values":
{dotted path: value}, "saved": unix time}}}``. The dataset folder is the key, so ``data.path`` is
not stored in the values; :meth:`FormMemory.recall` puts it back. Only the newest
:data:`MAX_DATASETS` datasets are kept. An unreadable file is set aside (``.bad``), never
silently overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

FILE_NAME = "form_memory.json"
MAX_DATASETS = 50
DATASET_FIELD = "data.path"


def _key(dataset: str | os.PathLike) -> str:
    return str(Path(dataset).expanduser().resolve())


class FormMemory:
    def __init__(self, file: str | os.PathLike) -> None:
        self.file = Path(file)

    @classmethod
    def in_workspace(cls, workspace: str | os.PathLike) -> FormMemory:
        return cls(Path(workspace) / FILE_NAME)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError):
            self._set_aside()
            return {}
        datasets = data.get("datasets") if isinstance(data, dict) else None
        return datasets if isinstance(datasets, dict) else {}

    def _set_aside(self) -> None:
        with contextlib.suppress(OSError):
            os.replace(self.file, self.file.with_name(self.file.name + ".bad"))

    def recall(self, dataset: str | os.PathLike) -> dict[str, Any] | None:
        """The form values last remembered for ``dataset`` (with its folder as data.path), or None."""
        entry = self._read().get(_key(dataset))
        values = entry.get("values") if isinstance(entry, dict) else None
        if not isinstance(values, dict):
            return None
        return {**values, DATASET_FIELD: str(dataset)}

    def remember(self, dataset: str | os.PathLike, values: dict[str, Any]) -> None:
        """Store ``values`` (plain JSON-able data) as ``dataset``'s form; written atomically."""
        datasets = self._read()
        datasets[_key(dataset)] = {
            "values": {k: v for k, v in values.items() if k != DATASET_FIELD},
            "saved": time.time(),
        }
        newest = sorted(
            datasets.items(), key=lambda item: item[1].get("saved", 0) if isinstance(item[1], dict) else 0, reverse=True
        )[:MAX_DATASETS]
        text = json.dumps({"datasets": dict(newest)}, indent=1, sort_keys=True)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".{self.file.name}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.file)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

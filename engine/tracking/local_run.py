"""A run logger for machines without MLflow: the same interface, plain files in the run folder.

Training must work where only the core stack is installed (a GPU box, say).
Everything a ``RunLogger`` would send to MLflow is written under
``<run folder>/tracking/``: ``params.json``, ``tags.json``, ``metrics.jsonl``
(one ``{"key", "value", "step", "timestamp"}`` per line), ``artifacts/`` and
``status``. A stop request is a file named ``STOP`` in that folder.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

STOP_FILE = "STOP"


class LocalRunLogger:
    def __init__(
        self, runs_root: str | Path, run_id: str | None = None, tags: Mapping[str, Any] | None = None, **_ignored: Any
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex
        self.experiment_id = "local"
        self.folder = Path(runs_root) / self.run_id / "tracking"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tracking_uri = None
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._finished = False
        self._params = self._read("params.json")
        self._tags = self._read("tags.json")
        (self.folder / STOP_FILE).unlink(missing_ok=True)  # an old request must not end a resumed run
        self._write_status("RUNNING")
        if tags:
            for key, value in tags.items():
                self.set_tag(key, value)

    def _read(self, name: str) -> dict:
        path = self.folder / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def _dump(self, name: str, data: dict) -> None:
        tmp = self.folder / (name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        tmp.replace(self.folder / name)

    def _write_status(self, status: str) -> None:
        (self.folder / "status").write_text(status + "\n")

    # ---------------------------------------------------------------- the RunLogger interface
    def log_params(self, flat: Mapping[str, Any]) -> None:
        with self._lock:
            self._params.update({str(k): str(v) for k, v in flat.items()})
            self._dump("params.json", self._params)

    def set_tag(self, key: str, value: Any) -> None:
        with self._lock:
            self._tags[str(key)] = str(value)
            self._dump("tags.json", self._tags)

    def log_text(self, text: str, artifact_file: str) -> None:
        path = self.folder / "artifacts" / artifact_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def log_config(self, yaml_text: str, name: str = "run_config.yaml") -> None:
        self.log_text(yaml_text, name)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        target = self.folder / "artifacts" / (artifact_path or "")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / Path(path).name)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        lines = "".join(
            json.dumps({"key": k, "value": float(v), "step": int(step), "timestamp": now}) + "\n"
            for k, v in metrics.items()
        )
        with self._lock, open(self.folder / "metrics.jsonl", "a") as fh:
            fh.write(lines)

    def flush(self) -> bool:
        return True

    @property
    def pending(self) -> int:
        return 0

    def stop_requested(self) -> bool:
        return (self.folder / STOP_FILE).exists()

    @property
    def finished(self) -> bool:
        return self._finished

    def finish(self, status: str = "FINISHED") -> bool:
        if not self._finished:
            self._finished = True
            self._write_status(status)
        return True

    def __enter__(self) -> LocalRunLogger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._finished:
            self.finish("KILLED" if exc_type is KeyboardInterrupt else ("FAILED" if exc_type else "FINISHED"))


def request_local_stop(run_folder: str | Path) -> None:
    """Ask a run tracked without MLflow to stop (what ``request_stop`` does for MLflow runs)."""
    folder = Path(run_folder) / "tracking"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STOP_FILE).touch()


def read_metrics(run_folder: str | Path) -> list[dict]:
    path = Path(run_folder) / "tracking" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

"""Which MLflow store Lightbox talks to, and where run artifacts are kept.

MLflow 3.x refuses a plain folder (``./mlruns``) as a tracking store, so the
default is an SQLite database inside the workspace.  Its artifacts would
otherwise land in ``./mlruns`` of whatever directory the process started in,
so experiments created here point them at ``<workspace>/mlartifacts``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from engine.workspace import default_workspace

if TYPE_CHECKING:  # only for annotations: importing this module must stay cheap
    from mlflow import MlflowClient

DEFAULT_DB_NAME = "mlflow.db"
ARTIFACTS_DIR_NAME = "mlartifacts"

_SQLITE_PREFIX = "sqlite:///"


def _reject_file_store(uri: str) -> None:
    """A folder or ``file:`` URI would be MLflow's file store, which 3.x refuses to open."""
    scheme = urlparse(uri).scheme
    # One-letter schemes are Windows drive letters ("C:\\runs"), i.e. plain paths.
    if scheme == "" or scheme == "file" or len(scheme) == 1:
        path = Path(unquote(urlparse(uri).path) if scheme == "file" else uri).expanduser()
        if path.suffix.lower() not in (".db", ".sqlite", ".sqlite3"):
            path = path / DEFAULT_DB_NAME
        raise ValueError(
            f"MLflow tracking URI {uri!r} is a plain path; MLflow needs a database "
            f"(sqlite:///ABSOLUTE/PATH.db) or a server (http(s)://host:port). "
            f"Try {_SQLITE_PREFIX}{path.resolve().as_posix()}"
        )


def _absolute_sqlite(uri: str, base: Path) -> str:
    """``sqlite:///runs.db`` is relative to the current directory; pin it to ``base`` instead,
    so the training process and the app (started elsewhere) open the same file."""
    if not uri.startswith(_SQLITE_PREFIX):
        return uri
    raw = uri[len(_SQLITE_PREFIX) :]
    if raw in ("", ":memory:") or Path(raw).is_absolute() or raw.startswith("/"):
        return uri
    return _SQLITE_PREFIX + (base / raw).resolve().as_posix()


def resolve_tracking_uri(uri: str | None = None, workspace: str | Path | None = None) -> str:
    """The tracking URI to use: ``uri`` if given, else ``$MLFLOW_TRACKING_URI``, else
    ``sqlite:///<workspace>/mlflow.db`` (the workspace folder is created).

    Raises ValueError for a plain folder or ``file:`` URI, which MLflow 3.x cannot use.
    """
    base = Path(workspace).expanduser().resolve() if workspace is not None else None
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if chosen:
        chosen = chosen.strip()
        _reject_file_store(chosen)
        return _absolute_sqlite(chosen, base or Path.cwd())
    base = base or default_workspace().expanduser().resolve()
    base.mkdir(parents=True, exist_ok=True)
    return _SQLITE_PREFIX + (base / DEFAULT_DB_NAME).as_posix()


def artifact_location_for(workspace: str | Path) -> str:
    """Artifact root (a ``file://`` URI) for experiments of the workspace's embedded store."""
    folder = Path(workspace).expanduser().resolve() / ARTIFACTS_DIR_NAME
    folder.mkdir(parents=True, exist_ok=True)
    return folder.as_uri()


def _sqlite_folder(tracking_uri: str) -> Path | None:
    """Folder of an SQLite database file, or None for any other store."""
    if not tracking_uri.startswith(_SQLITE_PREFIX):
        return None
    raw = unquote(tracking_uri[len(_SQLITE_PREFIX) :]).split("?", 1)[0]
    if raw in ("", ":memory:"):
        return None
    return Path(raw).resolve().parent


def get_or_create_experiment(client: MlflowClient, name: str, workspace: str | Path | None = None) -> str:
    """Id of the experiment called ``name``, created (or restored from the trash) if needed.

    On an SQLite store a new experiment keeps its artifacts in ``<workspace>/mlartifacts``
    (or next to the database file when no workspace is given); a server decides for itself.
    """
    from mlflow.exceptions import MlflowException

    existing = client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            client.restore_experiment(existing.experiment_id)
        return existing.experiment_id

    location = None
    db_folder = _sqlite_folder(client.tracking_uri)
    if db_folder is not None:
        location = artifact_location_for(workspace if workspace is not None else db_folder)
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process (the app, a parallel trial) may have created it meanwhile.
        existing = client.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing.experiment_id

"""The MLflow model registry: an export as a version of a registered model, with an alias."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.tracking.tags import CHECKPOINT_TAG, TASK_TAG

from .manifest import ExportError, read_manifest

DEFAULT_ALIAS = "best"


def registration_problem(name: str, alias: str) -> str | None:
    """What MLflow would refuse in a registered model ``name`` or ``alias`` (None: both fine).

    MLflow's own rules, checked before an export so that a bad name does not fail after it;
    without importing MLflow, so a form can check them as they are typed."""
    if not name.strip():
        return "model name: give a name to register the export under"
    if "/" in name or ":" in name:
        return f"model name '{name}': may not contain '/' or ':'"
    if name in (".", "..") or name.startswith(".."):
        return f"model name '{name}': may not start with '..'"
    if not alias:
        return "alias: give an alias (e.g. best, production); MLflow aliases replace the old stages"
    if not re.fullmatch(r"[\w-]+", alias):
        return f"alias '{alias}': only letters, digits, '_' and '-'"
    if alias.lower() == "latest":
        return "alias 'latest': reserved by MLflow (it always means the newest version)"
    if alias[0] in "vV" and alias[1:].isdigit():
        return f"alias '{alias}': reserved by MLflow (it names version {alias[1:]})"
    if len(alias) > 255:
        return "alias: at most 255 characters"
    return None


def register_export(
    export_dir: str | Path, name: str, *, alias: str = DEFAULT_ALIAS, tracking_uri: str | None = None
) -> dict[str, Any]:
    """Log the export folder as artifacts of its run, make it a model version of ``name``, alias it.

    ``models:/NAME@ALIAS`` then resolves to the folder. Aliases, not the deprecated stages.
    """
    from engine.tracking.client import client as mlflow_client
    from engine.tracking.client import mlflow_available

    problem = registration_problem(name, alias)
    if problem:
        raise ExportError(f"cannot register {export_dir}: {problem}")
    manifest = read_manifest(export_dir)
    source = manifest["source"]
    uri = tracking_uri or source.get("tracking_uri")
    if not mlflow_available() or not uri:
        raise ExportError("--register needs MLflow and the run's tracking store")
    from mlflow.exceptions import MlflowException

    client = mlflow_client(uri)
    run_id = source["run_id"]
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ExportError(f"run {run_id} not found in {uri}: {exc}") from None
    artifact_path = f"export-{Path(export_dir).name}"
    try:
        client.log_artifacts(run_id, str(export_dir), artifact_path=artifact_path)
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description="Lightbox export (HF folder + ONNX)")
        version = client.create_model_version(
            name,
            source=f"{run.info.artifact_uri}/{artifact_path}",
            run_id=run_id,
            tags={TASK_TAG: manifest["task"], CHECKPOINT_TAG: source["checkpoint"]},
            description=f"{manifest['task']} export of run {run_id}",
        )
        client.set_registered_model_alias(name, alias, version.version)
    except MlflowException as exc:
        raise ExportError(f"registering {export_dir} as '{name}' in {uri} failed: {exc}") from None
    return {
        "name": name,
        "version": int(version.version),
        "alias": alias,
        "uri": f"models:/{name}@{alias}",
        "source": version.source,
        "run_id": run_id,
    }

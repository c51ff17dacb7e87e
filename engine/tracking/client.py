"""Reaching MLflow: whether it is installed, a client for a tracking URI, run searches.

Every engine module and the app's models that read or write a run through MLflow's client
get it here, so how a client is made and how a search's filter is written live in one place.
mlflow is imported inside the functions: importing this module stays free of it.

MLflow's filter grammar takes a string value between single or double quotes and never
unescapes what is inside (``'it\\'s'`` searches for ``it\\'s``), so :func:`quoted` picks the
quote the value does not contain instead of escaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations
    from mlflow import MlflowClient
    from mlflow.entities import Run


class TrackingUnreachableError(ConnectionError):
    """An MLflow tracking server does not answer; the message says what to do."""


def mlflow_available() -> bool:
    """Whether MLflow is installed (training falls back to files in the run folder without it)."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def client(tracking_uri: str | None) -> MlflowClient:
    """A client for ``tracking_uri``; cheap, since MLflow keeps one store per URI."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri)


def check_reachable(uri: str | None, timeout_s: float = 5.0) -> None:
    """Refuse an MLflow server that does not answer, in seconds (MLflow's own client retries for minutes).

    Anything but an ``http(s)://`` URI (an SQLite file) is always reachable.
    """
    import urllib.error
    import urllib.request

    if not uri or not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except urllib.error.HTTPError:
        return  # it answered: a server without /health is still a server
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingUnreachableError(
            f"cannot reach the MLflow tracking server at {uri} ({reason}): start it "
            "(lightbox server) or set tracking.uri / --tracking-uri"
        ) from None


# ---------------------------------------------------------------------- filters
def quoted(value: str) -> str:
    """``value`` as a string literal of MLflow's filter grammar (see the module's note)."""
    value = str(value)
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise ValueError(f"MLflow cannot search for a value holding both quote characters: {value!r}")


def tag_is(tag: str, value: str) -> str:
    """The filter condition: the run's tag ``tag`` equals ``value``."""
    return f"tags.`{tag}` = {quoted(value)}"


def run_name_is(name: str) -> str:
    return f"attributes.run_name = {quoted(name)}"


def status_is(status: str) -> str:
    return f"attributes.status = {quoted(status)}"


def started_since(time_ms: int) -> str:
    """Runs started at or after ``time_ms`` (milliseconds since the epoch)."""
    return f"attributes.start_time >= {int(time_ms)}"


def search_runs(
    mlflow_client: MlflowClient,
    experiment_ids: Sequence[str],
    *conditions: str,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
) -> list[Run]:
    """The runs of ``experiment_ids`` that meet every condition (made by the functions above)."""
    return list(
        mlflow_client.search_runs(
            list(experiment_ids),
            filter_string=" and ".join(conditions),
            order_by=list(order_by) if order_by else None,
            max_results=max_results,
        )
    )


def all_experiment_ids(mlflow_client: MlflowClient) -> list[str]:
    return [e.experiment_id for e in mlflow_client.search_experiments()]


def experiment_id(mlflow_client: MlflowClient, name: str) -> str | None:
    """The id of the experiment called ``name``; None where there is none."""
    found = mlflow_client.get_experiment_by_name(name)
    return None if found is None else found.experiment_id


__all__ = [
    "TrackingUnreachableError",
    "all_experiment_ids",
    "check_reachable",
    "client",
    "experiment_id",
    "mlflow_available",
    "quoted",
    "run_name_is",
    "search_runs",
    "started_since",
    "status_is",
    "tag_is",
]

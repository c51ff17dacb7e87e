"""Test connection: what a Ray cluster or an MLflow server answers, within a hard time limit.

:func:`check_ray` asks a Ray cluster's dashboard (``http://host:8265``) for its Ray version and
its nodes with their CPUs and GPUs, compares the version with this computer's Ray, and, given a
dataset folder, runs the same small probe job a submitted run runs first (``ray_jobs``) to see
whether the cluster's machines can read it. :func:`check_mlflow` asks an MLflow server whether
it answers and whether it takes a write (a throwaway experiment, created and then deleted).

Both return a :class:`CheckResult` (what was found, and what is wrong) within ``timeout``
seconds whatever the other side does: the work runs in a daemon thread, and a check that has not
finished by then reports the step it was waiting on. A token is named by where it came from
(``RAY_AUTH_TOKEN``, a token file...), never shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
# Time kept back from the limit so the answer is put together before it, not after.
MARGIN_S = 0.5
# The dataset probe is a Ray job; with less time than this left there is no point starting one.
PROBE_MIN_S = 2.5
TOKEN_SOURCES_TEXT = "--ray-token-file, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"


@dataclass
class CheckResult:
    """What a connection check found (``facts``) and what is wrong (``problems``, empty when ok)."""

    target: str
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str:
        return "; ".join(self.problems)

    def found(self) -> str:
        """The facts as one line, e.g. ``Ray 2.60.0 · 1 node · 2 CPUs · 0 GPUs``."""
        keys = sorted(self.facts, key=lambda k: _FACT_ORDER.index(k) if k in _FACT_ORDER else len(_FACT_ORDER))
        return " · ".join(_fact_text(key, self.facts[key]) for key in keys)


_FACT_ORDER = ["ray_version", "nodes", "cpus", "gpus", "dataset", "token", "mlflow_version", "reachable", "writable"]


def _fact_text(key: str, value: Any) -> str:
    if key == "ray_version":
        return f"Ray {value}"
    if key == "mlflow_version":
        return f"MLflow {value}"
    if key in ("nodes", "cpus", "gpus"):
        number = int(value) if float(value).is_integer() else value
        unit = {"nodes": "node", "cpus": "CPU", "gpus": "GPU"}[key]
        return f"{number} {unit}{'' if number == 1 else 's'}"
    if key == "token":
        return f"token from {value}"
    if key == "dataset":
        return f"dataset readable by the cluster ({value})"
    if isinstance(value, bool):
        return key if value else f"not {key}"
    return f"{key} {value}"


class _Deadline:
    def __init__(self, seconds: float, limit: float) -> None:
        self.end = time.monotonic() + seconds
        self.limit = limit  # the check's whole limit, for messages

    def left(self) -> float:
        return max(0.05, self.end - time.monotonic())


def _within(timeout: float, result: CheckResult, body: Callable[[CheckResult, _Deadline, list[str]], None]) -> None:
    """Run ``body`` in a daemon thread; past ``timeout`` s, say which step it was still waiting on.

    ``body`` records into its own copy of the facts; the caller's result takes them when it ends
    (or as they were at the limit), so a body that answers late changes nothing already returned.
    """
    started = time.monotonic()
    step = ["starting"]
    inner = CheckResult(result.target)
    deadline = _Deadline(timeout - MARGIN_S, timeout)

    def run() -> None:
        try:
            body(inner, deadline, step)
        except Exception as exc:  # a check reports what went wrong; it never raises into the GUI
            inner.problems.append(f"{step[0]}: {type(exc).__name__}: {exc}")

    worker = threading.Thread(target=run, name=f"check {result.target}", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout - MARGIN_S))
    result.facts.update(inner.facts)
    result.problems.extend(inner.problems)
    if worker.is_alive():
        result.problems.append(f"no answer from {result.target} within {timeout:.0f} s (while {step[0]})")
    result.seconds = time.monotonic() - started


def _reason(exc: BaseException, limit: float) -> str:
    """Why a connection failed, in a few words."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within the check's {limit:.0f} s"
    if isinstance(reason, socket.gaierror):
        return "unknown host name"
    return str(reason)


def _request(
    url: str, headers: dict[str, str], deadline: _Deadline, body: dict[str, Any] | None = None
) -> tuple[int, bytes]:
    """GET (or POST ``body`` as JSON) ``url``; ``(status, content)``, an HTTP error's status included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=dict(headers))
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=deadline.left()) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _unreachable(what: str, url: str, exc: BaseException, deadline: _Deadline) -> str:
    return f"cannot reach the {what} at {url}: {_reason(exc, deadline.limit)}"


# ---------------------------------------------------------------------- Ray
def dashboard_url(address: str) -> str:
    """``http://host:8265`` from a dashboard address given with or without its scheme."""
    address = address.strip()
    if address.startswith("ray://"):
        raise ValueError(f"{address} is a Ray client address; give the dashboard address, e.g. http://host:8265")
    if not address.startswith(("http://", "https://")):
        address = f"http://{address}"
    return address.rstrip("/")


def token_source(token_file: str | os.PathLike | None = None) -> str | None:
    """Where the token for a cluster comes from, in Ray's order (as ``ray_jobs.read_token`` reads it).

    A name for messages (``RAY_AUTH_TOKEN``, ``token file /path``...), never the token; None
    when there is no token anywhere."""
    if token_file:
        return f"token file {Path(token_file).expanduser()}"
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH", "")
    if named:
        return f"RAY_AUTH_TOKEN_PATH ({Path(named).expanduser()})"
    from engine.orchestration.ray_jobs import default_token_path

    default = default_token_path()
    return str(default) if default.is_file() else None


def local_ray_version() -> str | None:
    """This computer's Ray version, read without importing Ray; None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ray")
    except PackageNotFoundError:
        return None


def check_ray(
    address: str,
    *,
    token_file: str | os.PathLike | None = None,
    dataset_path: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> CheckResult:
    """What the Ray cluster whose dashboard is at ``address`` says about itself, within ``timeout`` s.

    Facts: ``ray_version``, ``nodes``, ``cpus``, ``gpus``, ``token`` (its source) and, with
    ``dataset_path``, ``dataset``. Problems: unreachable, 401/403 (naming the token's source), a
    Ray version other than this computer's, a dataset folder the cluster cannot read."""
    try:
        url = dashboard_url(address)
    except ValueError as exc:
        return CheckResult(address, problems=[str(exc)])
    result = CheckResult(url)
    _within(
        timeout, result, lambda found, deadline, step: _check_ray(url, token_file, dataset_path, found, deadline, step)
    )
    return result


def _check_ray(
    url: str,
    token_file: str | os.PathLike | None,
    dataset_path: str | os.PathLike | None,
    found: CheckResult,
    deadline: _Deadline,
    step: list[str],
) -> None:
    from engine.orchestration.ray_jobs import RayJobError, read_token

    step[0] = "reading the token"
    source = token_source(token_file)
    try:
        token = read_token(token_file)
    except RayJobError as exc:
        found.problems.append(str(exc))
        return
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if token:
        found.facts["token"] = source

    step[0] = f"asking {url} for its Ray version"
    try:
        status, content = _request(f"{url}/api/version", headers, deadline)
    except (urllib.error.URLError, OSError) as exc:
        found.problems.append(_unreachable("Ray dashboard", url, exc, deadline))
        return
    if status in (401, 403):
        found.problems.append(_refused(url, status, source))
        return
    if status != 200:
        found.problems.append(f"the Ray dashboard at {url} answered HTTP {status} to /api/version")
        return
    remote_version = str(json.loads(content).get("ray_version", "?"))
    found.facts["ray_version"] = remote_version

    local_version = local_ray_version()
    if local_version is None:
        found.problems.append(
            "Ray is not installed on this computer (pip install 'ray[default]'), so no job can be sent"
        )
    elif local_version != remote_version:
        found.problems.append(
            f"Ray version mismatch: this computer has Ray {local_version}, the cluster at {url} runs {remote_version}"
        )
    if dataset_path and local_version is not None:  # the probe is a job, sent with this computer's Ray
        step[0] = "probing the dataset folder on the cluster"
        _probe_dataset(url, token, str(dataset_path), found, deadline)
    # Asked last: a head that has just started answers before it lists itself as a node.
    step[0] = f"asking {url} for its nodes"
    _count_nodes(url, headers, found, deadline)


def _count_nodes(url: str, headers: dict[str, str], found: CheckResult, deadline: _Deadline) -> None:
    """The cluster's live nodes and their CPUs and GPUs, from the dashboard's state API."""
    status, content = _request(f"{url}/api/v0/nodes", headers, deadline)
    if status != 200:
        found.problems.append(f"the Ray dashboard at {url} answered HTTP {status} when asked for its nodes")
        return
    nodes = [n for n in json.loads(content)["data"]["result"]["result"] if n.get("state") == "ALIVE"]
    found.facts["nodes"] = len(nodes)
    for key, resource in (("cpus", "CPU"), ("gpus", "GPU")):
        found.facts[key] = sum(float(n.get("resources_total", {}).get(resource, 0)) for n in nodes)
    if not nodes:
        found.problems.append(f"the Ray cluster at {url} lists no live node: it cannot run a job yet")


def _refused(url: str, status: int, source: str | None) -> str:
    if source is None:
        return (
            f"the Ray cluster at {url} refused the request ({status} {_STATUS_WORDS.get(status, '')}): "
            f"it needs a token and none was found ({TOKEN_SOURCES_TEXT})"
        )
    return (
        f"the Ray cluster at {url} refused the token from {source} ({status} {_STATUS_WORDS.get(status, '')}); "
        "is it this cluster's token?"
    )


_STATUS_WORDS = {401: "unauthorised", 403: "forbidden"}


class _RecordedJobs:
    """A JobSubmissionClient that remembers the probe job it submitted and the last status seen."""

    def __init__(self, jobs: Any) -> None:
        self._jobs = jobs
        self.job_id: str | None = None
        self.status: str | None = None

    def submit_job(self, **kwargs: Any) -> str:
        self.job_id = self._jobs.submit_job(**kwargs)
        return self.job_id

    def stop(self) -> None:
        """Stop the probe (left alone, it ends by itself in seconds: stopping is a courtesy)."""
        with contextlib.suppress(Exception):
            self._jobs.stop_job(self.job_id)

    def get_job_status(self, job_id: str) -> Any:
        status = self._jobs.get_job_status(job_id)
        self.status = str(status.value)
        return status


def _probe_dataset(url: str, token: str | None, path: str, found: CheckResult, deadline: _Deadline) -> None:
    """The run's own dataset probe (``ray_jobs``), bounded by what is left of the limit."""
    from engine.orchestration import ray_jobs

    if deadline.left() < PROBE_MIN_S:
        found.problems.append(f"no time left to check whether the cluster can read {path}")
        return
    try:
        jobs = _RecordedJobs(ray_jobs.client(url, token))
    except ray_jobs.RayJobError as exc:
        found.problems.append(str(exc))
        return
    # ray_jobs polls once a second: keep that second and the last poll inside the limit.
    try:
        ray_jobs._check_dataset_on_cluster(jobs, path, timeout=max(0.0, deadline.left() - 1.5))
    except ray_jobs.RayJobError as exc:
        if jobs.status in ("SUCCEEDED", "FAILED", "STOPPED"):
            found.problems.append(f"the dataset folder {path} is not readable by the Ray cluster at {url}")
        elif jobs.job_id is None:
            found.problems.append(str(exc))
        else:  # still pending: the answer is unknown, not "unreadable"
            found.problems.append(
                f"could not tell in time whether the cluster can read {path} "
                f"(probe job {jobs.job_id} still {jobs.status})"
            )
            jobs.stop()
        return
    found.facts["dataset"] = path


# ---------------------------------------------------------------------- MLflow
def _mlflow_auth() -> tuple[dict[str, str], str | None]:
    """Headers for an MLflow server, from where MLflow's client takes them, and that source's name."""
    import base64

    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}, "MLFLOW_TRACKING_TOKEN"
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {basic}"}, "MLFLOW_TRACKING_USERNAME/PASSWORD"
    return {}, None


def check_mlflow(uri: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> CheckResult:
    """Whether the MLflow server at ``uri`` answers (``reachable``) and takes a write (``writable``).

    The write is a throwaway experiment, created and deleted at once."""
    uri = uri.strip().rstrip("/")
    result = CheckResult(uri)
    if not uri.startswith(("http://", "https://")):
        result.problems.append(f"{uri or 'an empty address'} is not an MLflow server address (http://host:port)")
        return result
    _within(timeout, result, lambda found, deadline, step: _check_mlflow(uri, found, deadline, step))
    return result


def _api_error(content: bytes) -> str:
    try:
        answer = json.loads(content)
        return f"{answer.get('error_code', '')}: {answer.get('message', '')}".strip(": ")
    except ValueError:
        return content.decode(errors="replace")[:200]


def _check_mlflow(uri: str, found: CheckResult, deadline: _Deadline, step: list[str]) -> None:
    headers, source = _mlflow_auth()
    step[0] = f"asking {uri}/health"
    try:
        status, _ = _request(f"{uri}/health", headers, deadline)
    except (urllib.error.URLError, OSError) as exc:
        found.problems.append(_unreachable("MLflow server", uri, exc, deadline))
        return
    found.facts["reachable"] = True
    status, content = _request(f"{uri}/version", headers, deadline)
    if status == 200 and len(content) < 40:
        found.facts["mlflow_version"] = content.decode(errors="replace").strip()

    step[0] = "creating a throwaway experiment"
    name = f"lightbox-connection-check-{secrets.token_hex(4)}"
    status, content = _request(f"{uri}/api/2.0/mlflow/experiments/create", headers, deadline, {"name": name})
    if status in (401, 403):
        who = (
            f"the credentials from {source}"
            if source
            else "no credentials (MLFLOW_TRACKING_TOKEN or _USERNAME/_PASSWORD)"
        )
        found.problems.append(f"the MLflow server at {uri} refused a write ({status}) with {who}")
        found.facts["writable"] = False
        return
    if status != 200:
        found.problems.append(f"the MLflow server at {uri} refused a write (HTTP {status}: {_api_error(content)})")
        found.facts["writable"] = False
        return
    experiment = json.loads(content)["experiment_id"]
    step[0] = "deleting the throwaway experiment"
    status, content = _request(
        f"{uri}/api/2.0/mlflow/experiments/delete", headers, deadline, {"experiment_id": experiment}
    )
    if status != 200:
        found.problems.append(
            f"the MLflow server at {uri} took a write but not its deletion: experiment {name} is left "
            f"(HTTP {status}: {_api_error(content)})"
        )
    found.facts["writable"] = True


__all__ = ["CheckResult", "check_mlflow", "check_ray", "dashboard_url", "local_ray_version", "token_source"]

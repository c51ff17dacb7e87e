"""Runs on a remote Ray cluster: submit ``lightbox train|tune`` as a Ray job and follow it.

Plain functions over Ray's ``JobSubmissionClient`` (the cluster's dashboard
address, e.g. ``http://host:8265``): :func:`submit_job`, :func:`job_status`,
:func:`job_logs`, :func:`stop_job`, :func:`list_jobs`. The job's runtime
environment carries a copy of the engine package and the run configuration
(never the repository's .git, virtual environments or datasets); the job logs to
the MLflow server named by ``tracking.uri``, so it is charted like a local run.
A token for clusters with token authentication comes from ``--ray-token-file``, else from
where Ray keeps it (:func:`read_token`), and is never printed. Values reach the shell
that runs a job's entrypoint only quoted (``shlex``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.config import RunConfig
from engine.tracking.tags import LAUNCH_ID_ENV, LAUNCH_ID_TAG, TASK_TAG

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
ENGINE_DIR = Path(__file__).resolve().parents[1]
EXCLUDES = [".git", ".venv", "venv", "__pycache__", "*.pyc", "*.ckpt", "datasets"]
CONNECT_TIMEOUT_S = 8.0
# Keys of a Ray job's metadata: a dataset probe is no run; a run's job says its verb and task
# (the task under the run tag's name) and carries the launch id its MLflow run is tagged with.
PROBE_KEY, VERB_KEY = "lightbox.probe", "lightbox.verb"


class RayJobError(RuntimeError):
    """The cluster cannot be reached, refused us, or the job failed; the message says which."""


def _first_line(path: Path, source: str) -> str:
    """The token in ``path``: its first line, trimmed, as Ray reads it; never printed."""
    try:
        with path.open() as handle:
            token = handle.readline().strip()
    except OSError as exc:
        raise RayJobError(f"cannot read the Ray token file {path} ({source}): {exc.strerror}") from None
    if not token:
        raise RayJobError(f"the Ray token file {path} ({source}) is empty")
    return token


def default_token_path() -> Path:
    """``~/.ray/auth_token``: where Ray keeps the token of the clusters this account starts."""
    return Path.home() / ".ray" / "auth_token"


def read_token(token_file: str | os.PathLike | None = None) -> str | None:
    """The cluster token, found where Ray itself looks for it; None when there is none.

    ``token_file`` (``--ray-token-file``) comes first; then, in Ray's own order,
    ``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH``, and ``~/.ray/auth_token``
    (Ray 2.60 writes one for every local cluster started without ``RAY_AUTH_MODE``).
    """
    if token_file:
        return _first_line(Path(token_file).expanduser(), "--ray-token-file")
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if token:
        return token
    named = os.environ.get("RAY_AUTH_TOKEN_PATH", "")
    if named:  # Ray refuses a named file it cannot read, rather than look further
        return _first_line(Path(named).expanduser(), "RAY_AUTH_TOKEN_PATH")
    default = default_token_path()
    if default.is_file():
        try:
            with default.open() as handle:
                return handle.readline().strip() or None
        except OSError as exc:
            raise RayJobError(f"cannot read the Ray token file {default}: {exc.strerror}") from None
    return None


def _dashboard_url(address: str) -> str:
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    if address.startswith("ray://"):
        raise RayJobError(f"{address} is a Ray client address; jobs need the dashboard address, e.g. http://host:8265")
    return f"http://{address}"


def _check_reachable(url: str, token: str | None) -> None:
    """Fail within a few seconds, naming the address, instead of the SDK's long retries."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{url}/api/version", headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=CONNECT_TIMEOUT_S):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise RayJobError(
                f"the Ray cluster at {url} refused the request ({exc.code}): it needs a valid "
                "token (--ray-token-file FILE, RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                f"{default_token_path()})"
            ) from None
        raise RayJobError(f"the Ray cluster at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RayJobError(f"cannot reach the Ray cluster at {url}: {reason}") from None


def client(address: str, token: str | None = None):
    """A JobSubmissionClient for ``address``, checked reachable and authorised."""
    from ray.job_submission import JobSubmissionClient

    url = _dashboard_url(address)
    _check_reachable(url, token)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return JobSubmissionClient(url, headers=headers)
    except Exception as exc:  # the SDK raises RuntimeError / ConnectionError with its own text
        text = str(exc)
        if "401" in text or "403" in text:
            raise RayJobError(f"the Ray cluster at {url} refused the token (401/403)") from None
        raise RayJobError(f"cannot use the Ray cluster at {url}: {text.splitlines()[0]}") from None


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def stage_working_dir(config: RunConfig, into: Path) -> Path:
    """A folder holding the engine package and ``run.yaml``: the job's working directory."""
    shutil.copytree(ENGINE_DIR, into / "engine", ignore=shutil.ignore_patterns(*EXCLUDES))
    config.save(into / "run.yaml")
    size = _folder_size(into)
    if size > MAX_UPLOAD_BYTES:
        raise RayJobError(
            f"the job's files are {size / 2**20:.0f} MiB, over Ray's {MAX_UPLOAD_BYTES // 2**20} MiB upload limit"
        )
    return into


def _check_dataset_on_cluster(jobs, path: str, timeout: float = 120.0) -> None:
    """A small probe job: is the dataset folder readable where the job will run?"""
    # Ray runs an entrypoint through a shell: the path goes in as one quoted argument, never as code.
    check = "import os, sys; p = sys.argv[1]; sys.exit(0 if os.path.isdir(p) and os.access(p, os.R_OK) else 3)"
    probe = jobs.submit_job(metadata={PROBE_KEY: "dataset"}, entrypoint=shlex.join(["python", "-c", check, path]))
    status = _wait(jobs, probe, timeout)
    if status != "SUCCEEDED":
        raise RayJobError(
            f"the dataset folder {path} is not readable on the Ray cluster (probe job {probe}: "
            f"{status}); put the data where the cluster's machines can read it"
        )


def _wait(jobs, job_id: str, timeout: float | None = None) -> str:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = str(jobs.get_job_status(job_id).value)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        if deadline is not None and time.monotonic() > deadline:
            return status
        time.sleep(1.0)


def submit_job(
    config: RunConfig,
    address: str,
    *,
    verb: str = "train",
    token: str | None = None,
    check_dataset: bool = True,
    extra_args: list[str] | None = None,
    progress_events: bool = False,
) -> str:
    """Submit ``lightbox <verb>`` of ``config`` to the cluster; returns the Ray job id.

    ``progress_events``: the job writes JSON progress events into its log (for a program that
    reads the log, as the app does) instead of nothing."""
    if verb not in ("train", "tune"):
        raise ValueError(f"verb must be 'train' or 'tune', not {verb!r}")
    if not config.data.path:
        raise RayJobError("no dataset: set data.path (a folder the cluster's machines can read)")
    if config.tracking.uri is None or config.tracking.uri.startswith(("sqlite:", "file:")):
        print(
            "note: tracking.uri is not an MLflow server; the job records into a store on the cluster's "
            "machine (use `lightbox server` and set tracking.uri to chart it here)",
            file=sys.stderr,
        )
    else:
        from engine.tracking.client import TrackingUnreachableError, check_reachable

        try:  # the job would train unseen: refuse it here, in seconds
            check_reachable(config.tracking.uri)
        except TrackingUnreachableError as exc:
            raise RayJobError(str(exc)) from None
    jobs = client(address, token)
    if check_dataset:
        _check_dataset_on_cluster(jobs, str(config.data.path))
    remote = config.with_overrides({"compute.ray_address": None}) if config.compute.ray_address else config
    # A stop sends SIGTERM; the run then saves a checkpoint and ends KILLED, which takes longer
    # than Ray's default 3 s before SIGKILL. The launch id tags the job's MLflow run.
    launch_id = uuid.uuid4().hex
    env_vars = {
        "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        "PYTHONUNBUFFERED": "1",
        "RAY_JOB_STOP_WAIT_TIME_S": "30",
        LAUNCH_ID_ENV: launch_id,
    }
    if progress_events:
        from engine.tracking.progress_events import EVENTS_ENV

        env_vars[EVENTS_ENV] = "1"
    with tempfile.TemporaryDirectory(prefix="lightbox-job-") as folder:
        stage_working_dir(remote, Path(folder))
        entry = [
            "python",
            "-m",
            "engine",
            verb,
            "--config",
            "run.yaml",
            *(["--no-progress"] if verb == "train" else []),
            *(extra_args or []),
        ]
        try:
            return jobs.submit_job(
                entrypoint=shlex.join(entry),
                runtime_env={"working_dir": folder, "env_vars": env_vars},
                metadata={VERB_KEY: verb, TASK_TAG: config.task.name, LAUNCH_ID_TAG: launch_id},
            )
        except Exception as exc:
            raise RayJobError(f"the cluster at {address} refused the job: {str(exc).splitlines()[0]}") from None


def job_status(address: str, job_id: str, token: str | None = None) -> dict[str, Any]:
    info = client(address, token).get_job_info(job_id)
    return {
        "job_id": job_id,
        "status": str(info.status.value),
        "message": info.message,
        "entrypoint": info.entrypoint,
        "start_time": info.start_time,
        "end_time": info.end_time,
    }


def job_logs(address: str, job_id: str, token: str | None = None) -> str:
    return client(address, token).get_job_logs(job_id)


def follow_logs(address: str, job_id: str, token: str | None = None) -> Iterator[str]:
    """The job's log lines as they come, until the job ends."""
    import asyncio

    jobs = client(address, token)
    loop = asyncio.new_event_loop()
    try:
        agen = jobs.tail_job_logs(job_id).__aiter__()
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


def stop_job(address: str, job_id: str, token: str | None = None) -> bool:
    """Ask the job to stop (its run ends KILLED); True when Ray accepted the request."""
    return bool(client(address, token).stop_job(job_id))


def list_jobs(address: str, token: str | None = None) -> list[dict[str, Any]]:
    found = []
    jobs = client(address, token)
    for info in jobs.list_jobs():
        if not info.submission_id or (info.metadata or {}).get(PROBE_KEY):
            continue  # drivers attached with ray.init, and our dataset probes, are not runs
        found.append(
            {
                "job_id": info.submission_id,
                "status": str(info.status.value),
                "entrypoint": info.entrypoint,
                "message": info.message,
                "run_id": run_id_of(jobs.get_job_logs(info.submission_id)),
            }
        )
    return found


def run_id_of(logs: str) -> str | None:
    """The MLflow run of a job: the run id (or a search's parent run id) in its final JSON line."""
    import json

    for line in reversed(logs.strip().splitlines()):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except ValueError:
                continue
            return summary.get("run_id") or summary.get("parent_run_id")
    return None


def wait_for(address: str, job_id: str, token: str | None = None, timeout: float | None = None) -> str:
    return _wait(client(address, token), job_id, timeout)

"""Attaching this process to a Ray cluster (or starting a local one): what Ray Train and Ray Tune share."""

from __future__ import annotations

import json
import os
from pathlib import Path

RAY_CONNECT_TIMEOUT_S = 5.0
# Set by Ray's job manager in a job's driver: the job's runtime env and metadata, as JSON.
JOB_CONFIG_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def start_ray(address: str | None, error: type[Exception], env: dict[str, str] | None = None) -> None:
    """Attach to the cluster at ``address`` (``host:port``), or start a local Ray; once per process.

    The engine's folder goes on the workers' PYTHONPATH. An address nobody answers on is an
    ``error`` within seconds (``ray.init`` itself would wait for a minute or more).
    """
    import socket

    import ray

    if ray.is_initialized():
        return
    root = str(Path(__file__).resolve().parents[2])
    env_vars = {
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        **(env or {}),
    }
    job_env = _job_env_vars()
    if job_env is not None:
        # Inside a Ray job the job's working dir (the engine) and env vars already reach every
        # worker, and Ray refuses an init env that sets any of those keys again: add only the rest.
        env_vars = {k: v for k, v in env_vars.items() if k not in job_env and k != "PYTHONPATH"}
    attach = address if address and address not in ("local", "auto") else None
    if attach and not attach.startswith("ray://"):
        host, _, port = attach.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as exc:
            raise error(f"cannot reach the Ray cluster at {address}: {exc}") from None
    try:
        ray.init(
            address=attach or (address if address == "auto" else None),
            include_dashboard=False,
            runtime_env={"env_vars": env_vars} if env_vars else None,
            configure_logging=False,
        )
    except ConnectionError as exc:
        raise error(f"cannot reach the Ray cluster at {address}: {exc}") from None


def _job_env_vars() -> dict[str, str] | None:
    """The env vars of the Ray job this process is the driver of; None outside a Ray job."""
    text = os.environ.get(JOB_CONFIG_ENV)
    if not text:
        return None
    try:
        env_vars = (json.loads(text).get("runtime_env") or {}).get("env_vars") or {}
    except (ValueError, AttributeError):
        return {}
    return dict(env_vars) if isinstance(env_vars, dict) else {}


__all__ = ["RAY_CONNECT_TIMEOUT_S", "start_ray"]

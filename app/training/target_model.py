"""Where a run executes and where it is tracked: the "Where to run" panel's model (Qt-free).

A :class:`Target` is one of three places to run (this computer, a Ray started here, a remote
Ray cluster by its dashboard address) and one of two places to track (the workspace's embedded
SQLite store, or an MLflow server). A remote run is a Ray job that trains on one of the
cluster's machines with what that machine has (the engine's Ray Train cannot start inside a
Ray job). :func:`apply_target` turns it into the run config's compute
section and ``tracking.uri`` and returns the tracking URI the run is charted from, so the Train
tab launches every kind of run with the same code: a dashboard address in
``compute.ray_address`` is what makes it a Ray job. :class:`TargetMemory` keeps one target per
workspace in a small JSON file, written atomically; an unreadable file is set aside (``.bad``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

FILE_NAME = "run_target.json"

LOCAL, LOCAL_RAY, REMOTE_RAY = "local", "local_ray", "remote_ray"
WHERE = (LOCAL, LOCAL_RAY, REMOTE_RAY)
WORKSPACE_STORE, MLFLOW_SERVER = "workspace", "mlflow"
TRACKING = (WORKSPACE_STORE, MLFLOW_SERVER)
ACCELERATORS = ("auto", "cpu", "gpu")

#: the run config's fields a target decides (the run form need not show them)
TARGET_FIELDS = (
    "compute.accelerator",
    "compute.devices",
    "compute.strategy",
    "compute.num_workers",
    "compute.use_gpu",
    "compute.ray_address",
    "tracking.uri",
)

_HOST_PORT = re.compile(r"(https?://)?[\w.-]+(:\d+)?/?")


def summary(target: Target) -> str:
    """One line saying where runs go and where they are tracked, for under the forms."""
    if target.where == REMOTE_RAY:
        where = f"the Ray cluster at {target.dashboard.strip() or '(no address yet)'}"
    elif target.where == LOCAL_RAY:
        gpus = ", a GPU each" if target.ray_gpu_per_worker else ""
        where = f"a Ray started here ({target.ray_workers} worker{'s' if target.ray_workers != 1 else ''}{gpus})"
    else:
        hardware = {"auto": "CPU or GPU, whichever it finds", "cpu": "CPU", "gpu": "GPU"}.get(target.accelerator, "?")
        count = "" if target.devices is None else f", {target.devices} device{'s' if target.devices != 1 else ''}"
        where = f"this computer ({hardware}{count})"
    if target.tracking == MLFLOW_SERVER:
        tracked = f"the MLflow server {target.mlflow_uri.strip() or '(no address yet)'}"
    else:
        tracked = "this workspace's store"
    return f"Runs on {where}; tracked in {tracked}."


class TargetError(ValueError):
    """A target that cannot be used; ``problems`` maps each of its fields to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{FIELD_TITLES.get(k, k)}: {v}" for k, v in self.problems.items()))


FIELD_TITLES = {
    "where": "Where to run",
    "accelerator": "Hardware",
    "devices": "Devices",
    "ray_workers": "Ray workers",
    "dashboard": "Dashboard address",
    "tracking": "Where to track",
    "mlflow_uri": "MLflow server",
}


@dataclass(frozen=True)
class Target:
    """Where to run and where to track, as the panel shows it."""

    where: str = LOCAL
    accelerator: str = "auto"  # this computer: auto / cpu / gpu
    devices: int | None = None  # this computer: how many devices; None for all it finds
    ray_workers: int = 1  # a Ray started here: training workers (Ray Train)
    ray_gpu_per_worker: bool = False
    dashboard: str = ""  # a remote Ray: its dashboard address, http://host:8265
    tracking: str = WORKSPACE_STORE
    mlflow_uri: str = ""  # an MLflow server, http://host:5000

    @property
    def is_remote(self) -> bool:
        return self.where == REMOTE_RAY

    def problems(self) -> dict[str, str]:
        """Each field that cannot be used, with what is wrong with it (empty when the target is usable)."""
        found: dict[str, str] = {}
        if self.where not in WHERE:
            found["where"] = f"expected one of {', '.join(WHERE)}, not {self.where!r}"
        if self.accelerator not in ACCELERATORS:
            found["accelerator"] = f"expected one of {', '.join(ACCELERATORS)}, not {self.accelerator!r}"
        if self.devices is not None and (not isinstance(self.devices, int) or self.devices < 1):
            found["devices"] = "expected a whole number of at least 1 (or all)"
        if self.where == LOCAL_RAY and (not isinstance(self.ray_workers, int) or self.ray_workers < 1):
            found["ray_workers"] = "expected a whole number of at least 1"
        if self.where == REMOTE_RAY:
            address = self.dashboard.strip()
            if not address:
                found["dashboard"] = "give the cluster's dashboard address, e.g. http://host:8265"
            elif address.startswith("ray://"):
                found["dashboard"] = "a ray:// address is Ray's client port; give the dashboard, e.g. http://host:8265"
            elif not _HOST_PORT.fullmatch(address):
                found["dashboard"] = f"{address!r} is not an address such as http://host:8265"
        if self.tracking not in TRACKING:
            found["tracking"] = f"expected one of {', '.join(TRACKING)}, not {self.tracking!r}"
        if self.tracking == MLFLOW_SERVER:
            uri = self.mlflow_uri.strip()
            if not uri:
                found["mlflow_uri"] = "give the MLflow server's address, e.g. http://host:5000"
            elif not uri.startswith(("http://", "https://")) or not _HOST_PORT.fullmatch(uri):
                found["mlflow_uri"] = f"{uri!r} is not a server address such as http://host:5000"
        return found

    def dashboard_url(self) -> str:
        """The dashboard address with its scheme (``host:8265`` -> ``http://host:8265``)."""
        address = self.dashboard.strip().rstrip("/")
        return address if address.startswith(("http://", "https://")) else f"http://{address}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Target:
        """A target from saved values; unknown keys and values of the wrong type are left at their defaults."""
        if not isinstance(data, dict):
            return cls()
        default = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name, getattr(default, f.name))
            expected = type(getattr(default, f.name))
            if f.name == "devices":
                ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
            else:
                ok = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
            values[f.name] = value if ok else getattr(default, f.name)
        return cls(**values)


def apply_target(config, target: Target, workspace_uri: str):
    """``(config to launch, tracking URI to chart from)`` for running ``config`` at ``target``.

    ``workspace_uri``: the workspace's embedded store, used when the target tracks there. A
    remote target puts its dashboard address into ``compute.ray_address`` (the launcher then
    submits a Ray job); the others clear it. Raises :class:`TargetError` for an unusable target."""
    problems = target.problems()
    if problems:
        raise TargetError(problems)
    uri = tracking_uri(target, workspace_uri)
    overrides: dict[str, Any] = {"tracking.uri": uri if target.tracking == MLFLOW_SERVER else None}
    if target.where == LOCAL:
        overrides.update(
            {
                "compute.accelerator": target.accelerator,
                "compute.devices": "auto" if target.devices is None else target.devices,
                "compute.strategy": "auto",
                "compute.ray_address": None,
            }
        )
    elif target.where == LOCAL_RAY:
        overrides.update(
            {
                "compute.strategy": "ray",
                "compute.num_workers": target.ray_workers,
                "compute.use_gpu": target.ray_gpu_per_worker,
                "compute.ray_address": None,
            }
        )
    else:  # the job trains on a cluster machine with what that machine has (a GPU when it has one)
        overrides.update(
            {
                "compute.accelerator": "auto",
                "compute.devices": "auto",
                "compute.strategy": "auto",
                "compute.ray_address": target.dashboard_url(),
            }
        )
    return config.with_overrides(overrides), uri


def target_from_config(config, base: Target | None = None) -> Target:
    """The target a loaded config asks for, over ``base``: only what the config sets itself
    (its compute section's own fields, its ``tracking.uri``) changes the target."""
    compute, uri = config.compute, config.tracking.uri
    given = compute.model_fields_set
    target = base or Target()
    address = compute.ray_address or ""
    if address.startswith(("http://", "https://")):
        target = replace(target, where=REMOTE_RAY, dashboard=address)
    elif compute.strategy == "ray":
        target = replace(target, where=LOCAL_RAY)
    elif given & {"accelerator", "devices", "strategy", "ray_address"}:
        devices = compute.devices if isinstance(compute.devices, int) else None
        target = replace(target, where=LOCAL, accelerator=compute.accelerator, devices=devices)
    if target.where == LOCAL_RAY and given & {"num_workers", "use_gpu"}:
        target = replace(target, ray_workers=compute.num_workers, ray_gpu_per_worker=compute.use_gpu)
    if uri and uri.startswith(("http://", "https://")):
        target = replace(target, tracking=MLFLOW_SERVER, mlflow_uri=uri)
    elif "uri" in config.tracking.model_fields_set:  # a store file named in the config: this workspace's
        target = replace(target, tracking=WORKSPACE_STORE)
    return target


def tracking_uri(target: Target, workspace_uri: str) -> str:
    """Where runs at ``target`` are tracked: its MLflow server, else the workspace's store."""
    return target.mlflow_uri.strip().rstrip("/") if target.tracking == MLFLOW_SERVER else workspace_uri


def machine_problems(target: Target, gpus: int | None) -> dict[str, str]:
    """What this computer lacks for ``target``, given the ``gpus`` it has (None: not known yet)."""
    if target.where != LOCAL or target.accelerator != "gpu" or gpus is None:
        return {}
    if gpus == 0:
        return {"accelerator": "no GPU found on this computer; choose CPU or Auto"}
    if target.devices is not None and target.devices > gpus:
        return {"devices": f"this computer has {gpus} GPU{'s' if gpus > 1 else ''}, not {target.devices}"}
    return {}


def notes(target: Target) -> list[str]:
    """What a user should know about a usable target before running there."""
    found = []
    if target.is_remote and target.tracking == WORKSPACE_STORE:
        found.append(
            "The cluster's job cannot write to this workspace's store: it records on the cluster's machine "
            "and is charted here only if that is this computer. Track to an MLflow server the cluster can reach."
        )
    if target.is_remote and target.tracking == MLFLOW_SERVER:
        host = target.mlflow_uri.split("://", 1)[-1].split(":", 1)[0].split("/", 1)[0]
        if host in ("127.0.0.1", "localhost") and not any(h in target.dashboard for h in ("127.0.0.1", "localhost")):
            found.append(f"The MLflow server is at {host}: the cluster's machines see their own {host}, not this one.")
    return found


class TargetMemory:
    """The last target used in a workspace, in ``<workspace>/run_target.json``."""

    def __init__(self, file: str | os.PathLike) -> None:
        self.file = Path(file)

    @classmethod
    def in_workspace(cls, workspace: str | os.PathLike) -> TargetMemory:
        return cls(Path(workspace) / FILE_NAME)

    def recall(self) -> Target:
        """The saved target; the default (this computer, the workspace store) when there is none."""
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return Target()
        except (OSError, UnicodeDecodeError, ValueError):
            with contextlib.suppress(OSError):  # kept for a person to look at, never overwritten
                os.replace(self.file, self.file.with_name(self.file.name + ".bad"))
            return Target()
        return Target.from_dict(data.get("target") if isinstance(data, dict) else None)

    def remember(self, target: Target) -> None:
        """Save ``target`` (written to a temporary file, then moved over the old one)."""
        text = json.dumps({"target": target.to_dict(), "saved": time.time()}, indent=1, sort_keys=True)
        self.file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_name(f".{self.file.name}.{secrets.token_hex(4)}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.file)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class _NotKnown(Exception):
    """torch could not say (no answer in time, or it failed): asked again next time."""


def local_gpus(timeout: float = 20.0) -> list[str]:
    """The names of the GPUs this computer's torch can train on; empty when there are none or torch
    cannot tell. Asked once per process (they do not change while the app runs): in a child
    process, so the app neither imports torch nor waits on CUDA, unless torch is already imported."""
    try:
        return list(_gpu_names(timeout))
    except _NotKnown:
        return []


# Where Linux shows a loaded NVIDIA (CUDA) or AMD (ROCm) GPU driver.
_GPU_DRIVER_PATHS = ("/proc/driver/nvidia/gpus", "/dev/kfd")


@functools.cache
def _gpu_names(timeout: float) -> tuple[str, ...]:
    import subprocess
    import sys

    if sys.platform.startswith("linux") and not any(Path(p).exists() for p in _GPU_DRIVER_PATHS):
        return ()  # no NVIDIA or AMD GPU driver: nothing for torch to find, no child to start
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        return tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    script = "import torch\nfor i in range(torch.cuda.device_count()): print(torch.cuda.get_device_name(i))"
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        raise _NotKnown from None
    if done.returncode != 0:
        raise _NotKnown
    return tuple(line.strip() for line in done.stdout.splitlines() if line.strip())

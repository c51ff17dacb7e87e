"""Ray jobs on a real local head (``ray start --head`` on loopback), charted from MLflow."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("mlflow")

from engine.cli import main  # noqa: E402
from engine.orchestration.ray_jobs import RayJobError, list_jobs, wait_for  # noqa: E402
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_head(extra_env: dict):
    """``ray start --head --block`` in its own process group; SIGTERM to it stops what it started."""
    gcs, dash, client, agent, low = _free_ports(5)
    temp = tempfile.mkdtemp(prefix="lbray-", dir="/tmp")  # short: Ray's socket paths have a length limit
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        **extra_env,
    }
    proc = subprocess.Popen(
        [
            str(Path(bin_dir) / "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(gcs),
            "--dashboard-host",
            "127.0.0.1",
            "--dashboard-port",
            str(dash),
            "--ray-client-server-port",
            str(client),
            "--dashboard-agent-listen-port",
            str(agent),
            "--num-cpus",
            "2",
            "--temp-dir",
            temp,
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=2)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url  # answering (with 401 under token auth)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("ray start --head exited") from None
            time.sleep(1)
    _stop_head(proc)
    raise RuntimeError("the Ray head did not answer within 120 s")


def _stop_head(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)  # `ray start --block` can take longer; the group dies with SIGKILL
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def ray_head():
    proc, url = _start_head({"RAY_AUTH_MODE": "disabled"})
    yield url
    _stop_head(proc)


def _train_args(data, workspace):
    return [
        "train",
        "--data",
        str(data),
        "--task",
        "classification",
        "--model",
        "resnet-tiny",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--image-size",
        "32",
        "--num-workers",
        "0",
        "--workspace",
        str(workspace),
    ]


@pytest.mark.slow
def test_a_submitted_train_job_is_charted_from_mlflow(ray_head, sample_dataset, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    # The job logs to an MLflow server when CI runs one (as a remote cluster would), else to the workspace.
    uri = os.environ.get("LIGHTBOX_TEST_MLFLOW_URI") or f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    code = main(
        [*_train_args(sample_dataset, tmp_path / "ws"), "--tracking-uri", uri, "--ray-address", ray_head, "--wait"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "submitted Ray job raysubmit_" in captured.out
    summary = json.loads([line for line in captured.out.splitlines() if line.startswith('{"run_id"')][-1])
    assert summary["tracking_uri"] == uri
    run = MlflowClient(uri).get_run(summary["run_id"])
    assert run.info.status == "FINISHED" and "val/loss" in run.data.metrics

    listed = {job["run_id"]: job for job in list_jobs(ray_head)}
    assert listed[summary["run_id"]]["status"] == "SUCCEEDED"
    assert main(["jobs", "logs", listed[summary["run_id"]]["job_id"], "--ray-address", ray_head]) == 0
    assert summary["run_id"] in capsys.readouterr().out


@pytest.mark.slow
def test_a_failing_job_shows_its_error(ray_head, sample_dataset, tmp_path, capsys):
    code = main(
        [
            *_train_args(sample_dataset, tmp_path / "ws"),
            "--model",
            str(tmp_path / "no-such-model"),
            "--ray-address",
            ray_head,
            "--wait",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "no-such-model" in captured.out and "FAILED" in captured.err


def test_a_dataset_the_cluster_cannot_read_is_refused_before_submitting(ray_head, tmp_path, capsys):
    code = main([*_train_args(tmp_path / "nowhere", tmp_path / "ws"), "--ray-address", ray_head])
    assert code == 2
    assert "not readable on the Ray cluster" in capsys.readouterr().err


@pytest.mark.slow
def test_a_stopped_job_ends_its_run_killed_with_a_checkpoint(ray_head, sample_dataset, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    uri = os.environ.get("LIGHTBOX_TEST_MLFLOW_URI") or f"sqlite:///{tmp_path / 'ws' / 'mlflow.db'}"
    args = _train_args(sample_dataset, tmp_path / "ws")
    args[args.index("--epochs") + 1] = "1000"
    assert main([*args, "--tracking-uri", uri, "--ray-address", ray_head]) == 0
    job_id = capsys.readouterr().out.split("submitted Ray job ")[1].split()[0]
    runs = tmp_path / "ws" / "runs"
    deadline = time.monotonic() + 180
    while not list(runs.glob("*/checkpoints/best-*.ckpt")):  # stop once it trains (an epoch is done)
        assert time.monotonic() < deadline, "the job never finished an epoch"
        time.sleep(1)
    assert main(["jobs", "stop", job_id, "--ray-address", ray_head]) == 0
    assert wait_for(ray_head, job_id, timeout=60) == "STOPPED"
    (run_dir,) = [folder for folder in runs.iterdir() if (folder / "run.yaml").is_file()]
    run = MlflowClient(uri).get_run(run_dir.name)
    assert run.info.status == "KILLED"
    # SIGTERM came mid-epoch: the run saved its state there, after the last epoch's best.
    saved = sorted((run_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    assert saved[-1].name.startswith("latest-"), [p.name for p in saved]


def test_an_unreachable_cluster_is_a_clear_error_within_10_s(tmp_path, sample_dataset, capsys):
    (port,) = _free_ports(1)
    start = time.monotonic()
    code = main(["jobs", "list", "--ray-address", f"http://127.0.0.1:{port}"])
    assert code == 2 and time.monotonic() - start < 10
    assert f"cannot reach the Ray cluster at http://127.0.0.1:{port}" in capsys.readouterr().err
    # A job whose tracking server does not answer would train unseen: it is not submitted.
    start = time.monotonic()
    code = main(
        [
            *_train_args(sample_dataset, tmp_path / "ws"),
            "--tracking-uri",
            f"http://127.0.0.1:{port}",
            "--ray-address",
            f"http://127.0.0.1:{port}",
        ]
    )
    assert code == 2 and time.monotonic() - start < 10
    assert f"cannot reach the MLflow tracking server at http://127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.slow
def test_a_path_with_shell_syntax_reaches_the_probe_as_data(ray_head, tmp_path, capsys):
    marker = tmp_path / "ran"
    data = tmp_path / f"data $(touch {marker}) `touch {marker}`"
    code = main([*_train_args(data, tmp_path / "ws"), "--ray-address", ray_head])
    assert code == 2 and "not readable on the Ray cluster" in capsys.readouterr().err
    assert not marker.exists()  # the shell that runs the probe never ran the path
    data.mkdir(parents=True)  # and a folder with that name is found as it is
    assert main([*_train_args(data, tmp_path / "ws"), "--epochs", "1", "--ray-address", ray_head, "--wait"]) == 1
    assert "not readable" not in capsys.readouterr().err and not marker.exists()


def test_the_token_is_found_where_ray_keeps_it(tmp_path, monkeypatch):
    from engine.orchestration.ray_jobs import read_token

    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert read_token() is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("from-home\nsecond line\n")  # Ray reads the first line
    assert read_token() == "from-home"
    (tmp_path / "named").write_text("  from-path  \n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "named"))
    assert read_token() == "from-path"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-env")
    assert read_token() == "from-env"
    (tmp_path / "flag").write_text("from-flag")
    assert read_token(tmp_path / "flag") == "from-flag"
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(RayJobError, match="RAY_AUTH_TOKEN_PATH"):  # as Ray, no fall-back past a bad named file
        read_token()


@pytest.mark.slow
def test_token_auth_needs_the_token_and_never_prints_it(tmp_path, capsys, monkeypatch):
    secret = "lightbox-test-token-0123456789abcdef0123456789"
    proc, url = _start_head({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secret})
    try:
        monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
        monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no token of an earlier local Ray here
        assert main(["jobs", "list", "--ray-address", url]) == 2
        err = capsys.readouterr().err
        assert "needs a valid token" in err
        token_file = tmp_path / "token"
        token_file.write_text(secret + "\n")
        assert main(["jobs", "list", "--ray-address", url, "--ray-token-file", str(token_file)]) == 0
        out, err = capsys.readouterr()
        assert secret not in out + err
        # Where Ray keeps it: ~/.ray/auth_token (Ray 2.60 writes one for each local cluster).
        (tmp_path / "home" / ".ray").mkdir(parents=True)
        (tmp_path / "home" / ".ray" / "auth_token").write_text(secret)
        assert main(["jobs", "list", "--ray-address", url]) == 0
        out, err = capsys.readouterr()
        assert secret not in out + err
        with pytest.raises(RayJobError, match="empty"):
            from engine.orchestration.ray_jobs import read_token

            (tmp_path / "blank").write_text("")
            read_token(tmp_path / "blank")
    finally:
        _stop_head(proc)


def test_a_job_writes_progress_events_only_when_asked(sample_dataset, monkeypatch):
    """The app reads a job's log for its progress line, so it asks for events; a person's job stays plain."""
    from engine.config import RunConfig
    from engine.orchestration import ray_jobs
    from engine.tracking.progress_events import EVENTS_ENV

    submitted = []

    class Jobs:
        def submit_job(self, entrypoint, runtime_env, metadata):
            submitted.append(runtime_env["env_vars"])
            return "raysubmit_1"

    monkeypatch.setattr(ray_jobs, "client", lambda address, token=None: Jobs())
    config = RunConfig.from_dict({"task": {"name": "classification"}, "data": {"path": str(sample_dataset)}})
    ray_jobs.submit_job(config, "http://127.0.0.1:8265", check_dataset=False)
    ray_jobs.submit_job(config, "http://127.0.0.1:8265", check_dataset=False, progress_events=True)
    assert EVENTS_ENV not in submitted[0] and submitted[1][EVENTS_ENV] == "1"


@pytest.mark.slow
def test_a_job_trains_with_ray_train_on_the_cluster_it_runs_on(ray_head, sample_dataset, tmp_path, capsys):
    # Inside a Ray job the driver already has the job's runtime env; Ray Train's own ray.init must
    # not bring a second one (Ray refuses to merge them and the job fails before training).
    code = main(
        [
            *_train_args(sample_dataset, tmp_path / "ws"),
            "--compute.strategy",
            "ray",
            "--compute.num_workers",
            "1",
            "--ray-address",
            ray_head,
            "--wait",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, (captured.out + captured.err)[-3000:]
    summary = json.loads([line for line in captured.out.splitlines() if line.startswith('{"run_id"')][-1])
    listed = {job["run_id"]: job for job in list_jobs(ray_head)}
    assert listed[summary["run_id"]]["status"] == "SUCCEEDED"

"""The "Where to run" model: a target turns into the run config's compute section and tracking URI."""

import json

import pytest

from app.training.target_model import (
    LOCAL,
    LOCAL_RAY,
    MLFLOW_SERVER,
    REMOTE_RAY,
    Target,
    TargetError,
    TargetMemory,
    apply_target,
    machine_problems,
    notes,
    target_from_config,
)
from engine.config import RunConfig

WORKSPACE_URI = "sqlite:////ws/mlflow.db"


@pytest.fixture
def config():
    return RunConfig.from_dict(
        {"task": {"name": "classification"}, "data": {"path": "/data/coco"}, "compute": {"strategy": "ddp"}}
    )


def test_this_computer_sets_the_hardware_and_clears_any_cluster(config):
    config = config.with_overrides({"compute.ray_address": "http://old:8265"})
    launched, uri = apply_target(config, Target(where=LOCAL, accelerator="gpu", devices=2), WORKSPACE_URI)
    compute = launched.compute
    assert (compute.accelerator, compute.devices, compute.strategy, compute.ray_address) == ("gpu", 2, "auto", None)
    assert uri == WORKSPACE_URI and launched.tracking.uri is None
    launched, _ = apply_target(config, Target(where=LOCAL), WORKSPACE_URI)
    assert launched.compute.devices == "auto"  # every device found


def test_a_local_ray_trains_with_ray_workers_started_here(config):
    launched, _ = apply_target(config, Target(where=LOCAL_RAY, ray_workers=3, ray_gpu_per_worker=True), WORKSPACE_URI)
    compute = launched.compute
    assert (compute.strategy, compute.num_workers, compute.use_gpu, compute.ray_address) == ("ray", 3, True, None)


def test_a_remote_cluster_is_a_dashboard_address_the_launcher_submits_to(config):
    from engine.orchestration.ray_cli import is_job_address

    target = Target(where=REMOTE_RAY, dashboard="cluster:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://mlf:5000/")
    launched, uri = apply_target(config, target, WORKSPACE_URI)
    assert launched.compute.ray_address == "http://cluster:8265"
    # the job trains on a cluster machine with what it has (Ray Train cannot start inside a Ray job)
    assert (launched.compute.strategy, launched.compute.accelerator, launched.compute.devices) == ("auto",) * 3
    assert is_job_address(launched.compute.ray_address)  # the Train tab then submits a Ray job
    assert uri == launched.tracking.uri == "http://mlf:5000"
    assert launched.data == config.data and launched.task == config.task  # nothing else changes


def test_an_unusable_target_names_its_fields(config):
    target = Target(where=REMOTE_RAY, dashboard="ray://head:10001", tracking=MLFLOW_SERVER, mlflow_uri="mlf:5000")
    with pytest.raises(TargetError) as raised:
        apply_target(config, target, WORKSPACE_URI)
    assert set(raised.value.problems) == {"dashboard", "mlflow_uri"}
    assert "Dashboard address: a ray:// address is Ray's client port" in str(raised.value)
    assert Target(where=REMOTE_RAY).problems() == {
        "dashboard": "give the cluster's dashboard address, e.g. http://host:8265"
    }


def test_a_gpu_choice_is_checked_against_the_gpus_found():
    gpu = Target(accelerator="gpu", devices=2)
    assert machine_problems(gpu, 0) == {"accelerator": "no GPU found on this computer; choose CPU or Auto"}
    assert machine_problems(gpu, 1) == {"devices": "this computer has 1 GPU, not 2"}
    assert machine_problems(gpu, 2) == {} and machine_problems(gpu, None) == {}


def test_a_loaded_config_shows_as_its_target(config):
    remote = config.with_overrides(
        {"compute.ray_address": "http://c:8265", "compute.num_workers": 4, "tracking.uri": "http://m:5000"}
    )
    assert target_from_config(remote) == Target(
        where=REMOTE_RAY, dashboard="http://c:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://m:5000"
    )
    local = config.with_overrides({"compute.accelerator": "cpu", "compute.strategy": "auto"})
    assert target_from_config(local) == Target(where=LOCAL, accelerator="cpu")
    targets = (Target(where=LOCAL_RAY, ray_workers=2), Target(where=LOCAL, accelerator="gpu", devices=3))
    for target in (*targets, Target(where=REMOTE_RAY, dashboard="http://c:8265")):
        assert target_from_config(apply_target(config, target, WORKSPACE_URI)[0]) == target


def test_a_loaded_config_that_says_nothing_of_where_keeps_the_chosen_target(tmp_path):
    (tmp_path / "run.yaml").write_text("task: {name: classification}\ndata: {path: /data/coco}\n")
    chosen = Target(where=REMOTE_RAY, dashboard="http://c:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://m:5000")
    assert target_from_config(RunConfig.load(tmp_path / "run.yaml"), chosen) == chosen
    (tmp_path / "cpu.yaml").write_text("task: {name: classification}\ncompute: {accelerator: cpu}\n")
    assert target_from_config(RunConfig.load(tmp_path / "cpu.yaml"), chosen).where == LOCAL


def test_a_remote_run_tracked_in_the_workspace_is_warned_about():
    assert "cannot write to this workspace's store" in notes(Target(where=REMOTE_RAY, dashboard="c:8265"))[0]
    loopback = Target(where=REMOTE_RAY, dashboard="c:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://127.0.0.1:5000")
    assert "the cluster's machines see their own 127.0.0.1" in notes(loopback)[0]
    assert notes(Target()) == []


def test_the_target_is_saved_in_the_workspace_and_a_bad_file_set_aside(tmp_path):
    memory = TargetMemory.in_workspace(tmp_path)
    assert memory.recall() == Target()
    target = Target(where=REMOTE_RAY, dashboard="http://c:8265", tracking=MLFLOW_SERVER, mlflow_uri="http://m:5000")
    memory.remember(target)
    assert TargetMemory.in_workspace(tmp_path).recall() == target
    assert [p.name for p in tmp_path.iterdir()] == ["run_target.json"]  # no temporary file left
    (tmp_path / "run_target.json").write_text("{not json")
    assert memory.recall() == Target()
    assert (tmp_path / "run_target.json.bad").read_text() == "{not json"


def test_saved_values_of_the_wrong_kind_fall_back_to_defaults(tmp_path):
    saved = {"where": REMOTE_RAY, "devices": True, "ray_workers": "4", "dashboard": 7, "colour": "red"}
    (tmp_path / "run_target.json").write_text(json.dumps({"target": saved}))
    assert TargetMemory.in_workspace(tmp_path).recall() == Target(where=REMOTE_RAY)


def test_the_gpus_found_are_asked_once_per_process(monkeypatch, tmp_path):
    import sys
    import types

    from app.training import target_model

    asked = []

    def device_count():
        asked.append(1)
        return 2

    cuda = types.SimpleNamespace(device_count=device_count, get_device_name=lambda i: f"GPU {i}")
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))  # torch already loaded here
    monkeypatch.setattr(target_model, "_GPU_DRIVER_PATHS", (str(tmp_path),))  # a driver is loaded
    target_model._gpu_names.cache_clear()
    try:
        assert target_model.local_gpus() == ["GPU 0", "GPU 1"]
        assert target_model.local_gpus() == ["GPU 0", "GPU 1"] and len(asked) == 1
    finally:
        target_model._gpu_names.cache_clear()


def test_without_a_gpu_driver_no_gpu_is_looked_for(monkeypatch, tmp_path):
    import subprocess
    import sys

    from app.training import target_model

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(target_model, "_GPU_DRIVER_PATHS", (str(tmp_path / "none"),))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("a child was started"))
    target_model._gpu_names.cache_clear()
    try:
        assert target_model.local_gpus() == []
    finally:
        target_model._gpu_names.cache_clear()

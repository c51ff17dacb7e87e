"""The launcher starts a search as it starts a run, and finds the search's own run, not a trial's."""

import json
import sys

import pytest

from engine.orchestration.jobs import LocalJob, engine_command, find_launched_run, train_command, tune_command


def test_tune_command_is_the_train_command_with_the_tune_verb(tmp_path):
    cmd = tune_command(tmp_path / "search.yaml", workspace=tmp_path, tracking_uri="sqlite:///x.db")
    assert cmd[cmd.index("-m") + 1 : cmd.index("-m") + 3] == ["engine", "tune"]
    assert cmd[cmd.index("--config") + 1] == str((tmp_path / "search.yaml").resolve())
    assert cmd[cmd.index("--workspace") + 1] == str(tmp_path.resolve())
    assert cmd[cmd.index("--tracking-uri") + 1] == "sqlite:///x.db"
    train = train_command(tmp_path / "search.yaml", workspace=tmp_path, tracking_uri="sqlite:///x.db")
    assert [a if a != "train" else "tune" for a in train] == cmd
    assert LocalJob(tmp_path, "sqlite:///x.db", config_path=tmp_path / "s.yaml", verb="tune").command[4] == "tune"


def test_a_search_neither_resumes_nor_runs_an_unknown_verb(tmp_path):
    with pytest.raises(ValueError, match="only a training run resumes"):
        engine_command("tune", workspace=tmp_path, resume_run_id="abc")
    with pytest.raises(ValueError, match="needs a config file$"):
        engine_command("tune", workspace=tmp_path)
    with pytest.raises(ValueError, match="not 'predict'"):
        engine_command("predict", tmp_path / "x.yaml", workspace=tmp_path)
    assert sys.executable == tune_command(tmp_path / "x.yaml", workspace=tmp_path)[0]


def test_the_launched_run_is_the_first_the_launch_opened_not_a_later_trial(tmp_path):
    """A search's trials run in Ray workers that inherit the launch id: the job's run is the parent."""
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from engine.tracking.tags import LAUNCH_ID_TAG, PARENT_RUN_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lightbox")
    parent = client.create_run(experiment, start_time=1000, tags={LAUNCH_ID_TAG: "L1"}).info.run_id
    for start in (2000, 3000):
        client.create_run(experiment, start_time=start, tags={LAUNCH_ID_TAG: "L1", PARENT_RUN_TAG: parent})
    assert find_launched_run(uri, "L1") == parent
    assert find_launched_run(uri, "other") is None


def test_the_search_names_its_space_on_its_parent_run_readably():
    from engine.config import RunConfig
    from engine.orchestration.tune import space_params

    config = RunConfig.from_dict(
        {
            "task": "classification",
            "search": {
                "space": {
                    "optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
                    "optim.batch_size": {"type": "choice", "values": [8, 16]},
                }
            },
        }
    )
    params = space_params(config.search.space)
    assert json.loads(params["space.optim.lr"]) == {"type": "loguniform", "low": 1e-4, "high": 1e-2}
    assert json.loads(params["space.optim.batch_size"]) == {"type": "choice", "values": [8, 16]}
    assert json.loads(space_params({"lr": {"type": "grid", "values": [0.1]}})["space.optim.lr"])["type"] == "grid"

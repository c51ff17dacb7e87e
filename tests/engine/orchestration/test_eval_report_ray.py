"""A run trained on Ray's workers gets its evaluation report at the end too, as a local run does."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")
pytest.importorskip("mlflow")

from tests.conftest import REPO_ROOT  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}},
    )
    yield
    ray.shutdown()


def test_a_ray_run_has_its_report_when_it_finishes(ray_cluster, sample_dataset, tmp_path):
    from mlflow.tracking import MlflowClient

    from engine.config import RunConfig
    from engine.metrics.report import load_report
    from engine.orchestration.evaluate import report_path
    from engine.orchestration.ray_train import train_distributed

    workspace = tmp_path / "ws"
    config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides(
        {
            "data.path": str(sample_dataset),
            "model.checkpoint": "resnet-tiny",
            "optim.epochs": 1,
            "optim.batch_size": 8,
            "data.image_size": 32,
            "data.num_workers": 0,
            "workspace": str(workspace),
            "compute.strategy": "ray",
            "compute.num_workers": 1,
        }
    )
    result = train_distributed(config)
    assert result.status == "FINISHED"
    report = load_report(report_path(result.run_id, workspace=str(workspace)))
    assert report["source"]["checkpoint"] == result.best_checkpoint
    assert report["summary"]["accuracy"] == pytest.approx(result.metrics["val/accuracy"], abs=1e-6)
    metrics = MlflowClient(result.tracking_uri).get_run(result.run_id).data.metrics
    assert metrics["eval/accuracy"] == pytest.approx(report["summary"]["accuracy"])

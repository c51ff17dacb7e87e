"""Training where MLflow is not installed (the GPU machine): tracking falls back to files."""

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT

# Make `import mlflow` fail in a fresh interpreter, then train and resume.
SCRIPT = r"""
import sys, json
class _NoMlflow:
    def find_spec(self, name, path=None, target=None):
        if name == "mlflow" or name.startswith("mlflow."):
            raise ImportError("mlflow is not installed here")
        return None
sys.meta_path.insert(0, _NoMlflow())
from engine.config import RunConfig
from engine.orchestration.local import train
config = RunConfig.from_dict({"task": {"name": "classification"}}).with_overrides({
    "data.path": sys.argv[1], "model.checkpoint": "resnet-tiny", "optim.epochs": 2, "optim.batch_size": 16,
    "data.image_size": 32, "data.num_workers": 0, "workspace": sys.argv[2]})
first = train(config, progress=False)
config2 = config.with_overrides({"optim.epochs": 3})
config2.save(sys.argv[2] + "/runs/" + first.run_id + "/run.yaml")
again = train(resume_run_id=first.run_id, workspace=sys.argv[2], progress=False)
print(json.dumps({"first": first.status, "again": again.status, "run_id": first.run_id,
                  "same": again.run_id == first.run_id, "uri": first.tracking_uri,
                  "mlflow_loaded": "mlflow" in sys.modules}))
"""


def test_training_and_resume_without_mlflow(sample_dataset, tmp_path):
    workspace = tmp_path / "ws"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(sample_dataset), str(workspace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "first": "FINISHED",
        "again": "FINISHED",
        "run_id": result["run_id"],
        "same": True,
        "uri": None,
        "mlflow_loaded": False,
    }
    tracking = workspace / "runs" / result["run_id"] / "tracking"
    assert (tracking / "status").read_text().strip() == "FINISHED"
    metrics = [json.loads(line) for line in (tracking / "metrics.jsonl").read_text().splitlines()]
    val_steps = [m["step"] for m in metrics if m["key"] == "val/accuracy"]
    # 2 epochs, then 1 more after resuming (Lightning may validate the restored epoch again).
    assert set(val_steps) == {3, 6, 9} and val_steps == sorted(val_steps)
    assert json.loads((tracking / "params.json").read_text())["task.name"] == "classification"
    assert "MLflow is not installed" in done.stderr

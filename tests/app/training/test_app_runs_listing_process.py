"""MLflow reads in a helper process (runs_reader): MLflow's SQL store held the GIL for tens of ms
per refresh when it listed the runs from a worker thread, and the event loop waited for it."""

import time

import pytest

pytest.importorskip("mlflow")


def test_a_read_in_the_helper_runs_in_another_process():
    import os

    from app.training.runs_reader import in_helper

    assert in_helper(os.getpid) != os.getpid()


def test_the_helper_lists_the_same_rows_as_a_read_here(tmp_path):
    from app.training import runs_reader
    from app.training.runs_model import load_runs
    from engine.tracking.logger import RunLogger

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = RunLogger(uri, workspace=tmp_path, run_name="first", tags={"lightbox.task": "classification"})
    logger.log_params({"optim.lr": 0.01})
    logger.log_metrics({"val/loss": 0.5}, 1)
    logger.finish("FINISHED")
    here, there = load_runs(uri), runs_reader.load_runs(uri)
    assert [(r.run_id, r.name, r.status, r.params, r.metrics) for r in there] == [
        (r.run_id, r.name, r.status, r.params, r.metrics) for r in here
    ]


HELPER_OF_AN_APP_THAT_DIES = """
import os, sys
from app.training import runs_reader
if __name__ == "__main__":
    runs_reader.load_runs(sys.argv[1])
    print(list(runs_reader._executor._processes)[0], flush=True)
    os._exit(0)  # no atexit: the pool is never told to stop
"""

# The charts' metric reader: its helper outlived killed apps for hours before it watched its parent.
METRIC_READER_OF_AN_APP_THAT_DIES = """
import os, sys
from app.training.reader_process import ReaderProcess
if __name__ == "__main__":
    reader = ReaderProcess()
    reader._pool().submit(os.getpid).result()  # the helper started
    print(list(reader._executor._processes)[0], flush=True)
    os._exit(0)
"""


@pytest.mark.parametrize("script_text", [HELPER_OF_AN_APP_THAT_DIES, METRIC_READER_OF_AN_APP_THAT_DIES])
def test_the_helper_ends_when_the_app_is_gone(tmp_path, script_text):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    script = tmp_path / "app_that_dies.py"
    script.write_text(script_text, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(root)}
    answer = tmp_path / "helper.pid"
    with open(answer, "w", encoding="ascii") as out:  # a file, not a pipe: a helper left behind would hold a pipe open
        subprocess.run(
            [sys.executable, str(script), f"sqlite:///{tmp_path / 'mlflow.db'}"],
            stdout=out,
            env=env,
            cwd=root,
            timeout=120,
            check=True,
        )
    helper = int(answer.read_text(encoding="ascii").split()[-1])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{helper}").exists() and _state(helper) != "Z":
        if time.monotonic() > deadline:
            os.kill(helper, 9)  # not left behind by this test
            raise AssertionError(f"the helper process {helper} outlived its app")
        time.sleep(0.2)


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat", encoding="ascii").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"

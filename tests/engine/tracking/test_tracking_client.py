"""engine.tracking.client: one way to reach MLflow, and search filters that match any value."""

import pytest

pytest.importorskip("mlflow")

from engine.tracking.client import TrackingUnreachableError, check_reachable, client, quoted, search_runs, tag_is  # noqa: E402
from engine.tracking.store import get_or_create_experiment  # noqa: E402

AWKWARD = ["plain", "it's", 'say "hi"', "back\\slash", "a\\'b", "100%_done"]


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow_client = client(uri)
    experiment = get_or_create_experiment(mlflow_client, "lightbox", tmp_path)
    runs = {
        name: mlflow_client.create_run(experiment, run_name=name, tags={"lightbox.note": name}).info.run_id
        for name in AWKWARD
    }
    return uri, experiment, runs


def test_a_tag_search_finds_exactly_the_run_whatever_its_value_holds(store):
    uri, experiment, runs = store
    mlflow_client = client(uri)
    for name, run_id in runs.items():
        found = search_runs(mlflow_client, [experiment], tag_is("lightbox.note", name))
        assert [r.info.run_id for r in found] == [run_id], name


def test_the_app_finds_a_ray_jobs_run_by_a_name_with_quotes_and_backslashes(store):
    from app.training.ray_job import find_run_by_name

    uri, _, runs = store
    for name, run_id in runs.items():
        assert find_run_by_name(uri, "lightbox", name, since_ms=0) == run_id, name
    assert find_run_by_name(uri, "lightbox", "plain", since_ms=2**42) is None  # started before
    assert find_run_by_name(uri, "no such experiment", "plain", since_ms=0) is None


def test_a_value_holding_both_quotes_is_refused_with_its_text():
    assert quoted("it's") == '"it\'s"' and quoted('say "hi"') == "'say \"hi\"'"
    with pytest.raises(ValueError, match="both quote characters"):
        quoted('it\'s "both"')


def test_an_unreachable_server_is_named_in_seconds():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        TrackingUnreachableError, match=f"cannot reach the MLflow tracking server at http://127.0.0.1:{port}"
    ):
        check_reachable(f"http://127.0.0.1:{port}", timeout_s=2)
    check_reachable("sqlite:///anything.db")  # a file store is always there

"""Concepts with one home: the Lightning Trainer, the MLflow client, the names of run tags."""

import ast

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def _sources():
    for folder in ("engine", "app"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _calls_of(name: str) -> list[str]:
    """Files that call ``name(...)`` or ``something.name(...)``."""
    found = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append(path)
    return sorted(set(found))


def test_one_place_makes_a_lightning_trainer():
    assert _calls_of("Trainer") == ["engine/orchestration/trainer.py"]


def test_one_place_makes_an_mlflow_client():
    assert _calls_of("MlflowClient") == ["engine/tracking/client.py"]


# Ray job metadata keys (not run tags); every reader and writer of runs uses tracking.tags.
NOT_RUN_TAGS = {"engine/orchestration/ray_jobs.py"}


def test_run_tag_names_are_written_only_in_the_tags_module():
    literals = sorted(
        {
            path
            for path, tree in _sources()
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value.startswith(("lightbox.", "mlflow."))
            and node.value.count(".") == 1
            and " " not in node.value
            and not node.value.endswith((".py", ".db"))
        }
    )
    assert [p for p in literals if p not in NOT_RUN_TAGS] == ["engine/tracking/tags.py"]

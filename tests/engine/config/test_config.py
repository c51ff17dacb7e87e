"""The run configuration: YAML round trips, error messages, validation rules, overrides."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine.config as config
from engine.config import ConfigError, RunConfig, yaml_io
from tests.conftest import REPO_ROOT

REPO = REPO_ROOT


def _error(text: str, source: str | None = "run.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        RunConfig.from_yaml(text, source=source)
    return info.value


@pytest.fixture
def full_config() -> RunConfig:
    """A config that sets something in every section, including the search space."""
    return RunConfig.from_yaml(
        """
data: {path: /data/shapes, train_split: train, val_split: val, image_size: 384, on_problem: refuse}
task:
  name: multitask
  tasks: [detection, segmentation]
  loss_weights: {detection: 1.0, segmentation: 0.5}
model: {checkpoints: {detection: my/detr}, num_labels: 7}
augmentation:
  preset: false
  train: [{name: hflip, p: 0.5}, {name: resize, size: [384, 384]}]
optim: {lr: 3.0e-4, batch_size: 8, scheduler: step, grad_clip: 1.0, precision: 32}
search:
  space:
    optim.lr: {type: loguniform, low: 1.0e-5, high: 1.0e-2}
    optim.weight_decay: {type: uniform, low: 0, high: 0.1}
    optim.batch_size: {type: choice, values: [8, 16, 32]}
    optim.epochs: {type: randint, low: 5, high: 20}
    optim.warmup_steps: {type: quniform, low: 0, high: 500, q: 50}
  metric: val/map
  mode: max
compute: {devices: 2, strategy: ray, ray_address: 'http://head:8265', channels_last: true}
tracking: {uri: 'sqlite:///runs.db', run_name: trial}
workspace: /tmp/ws
"""
    )


# --------------------------------------------------------------------------- defaults and round trips


def test_minimal_config_fills_the_task_default_checkpoint():
    for task, checkpoint in config.DEFAULT_CHECKPOINTS.items():
        cfg = RunConfig.from_yaml(f"task: {{name: {task}}}\n")
        assert cfg.model.checkpoint == checkpoint
    assert RunConfig(task={"name": "detection"}).optim.lr is None  # the recipe chooses it per model family
    # Shorthand and an explicit checkpoint are both honoured.
    cfg = RunConfig.from_yaml("task: segmentation\nmodel: {checkpoint: ./my-model}\n")
    assert cfg.task.name == "segmentation" and cfg.model.checkpoint == "./my-model"


def test_multitask_fills_missing_per_task_checkpoints(full_config):
    assert full_config.model.checkpoints == {"detection": "my/detr", "segmentation": "segformer-b0"}
    assert full_config.model.checkpoint is None
    assert full_config.optim.precision == "32"  # YAML's number 32 is accepted


def test_yaml_text_round_trip_is_exact_and_stable(full_config):
    text = full_config.to_yaml()
    again = RunConfig.from_yaml(text)
    assert again == full_config
    assert again.to_yaml() == text
    # Sections keep declaration order rather than being sorted.
    top_level = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top_level == list(RunConfig.model_fields)


def test_file_round_trip(tmp_path, full_config):
    path = full_config.save(tmp_path / "nested" / "run.yaml")
    assert path.read_text(encoding="utf-8") == full_config.to_yaml()
    assert RunConfig.load(path) == full_config
    assert RunConfig.from_yaml(path) == full_config
    assert RunConfig.from_yaml(str(path)) == full_config
    assert [p.name for p in path.parent.iterdir()] == ["run.yaml"]  # no temp file left


def test_save_replaces_an_existing_file(tmp_path, full_config):
    path = tmp_path / "run.yaml"
    RunConfig(task={"name": "classification"}).save(path)
    full_config.save(path)
    assert RunConfig.load(path) == full_config


# --------------------------------------------------------------------------- error messages


def test_unknown_key_names_the_dotted_path_and_suggests_a_field():
    err = _error("task: detection\noptim:\n  learning_rate: 0.1\noptimm: {}\n")
    assert "run.yaml: optim.learning_rate: unknown key (did you mean 'lr'?)" in str(err)
    assert ("optimm", "unknown key (did you mean 'optim'?)") in err.problems
    assert len(err.problems) == 2


def test_unknown_key_without_a_close_match_has_no_suggestion():
    err = _error("task: detection\ncompute: {zzzz: 1}\n")
    assert err.problems == [("compute.zzzz", "unknown key")]


def test_bad_values_name_every_key_and_the_value():
    err = _error("task: detection\noptim: {lr: -1, batch_size: many}\ndata: {num_workers: -2}\n")
    assert isinstance(err, ValueError)
    assert "run.yaml: optim.lr: Input should be greater than 0 (got -1)" in str(err).splitlines()
    paths = [path for path, _ in err.problems]
    assert sorted(paths) == ["data.num_workers", "optim.batch_size", "optim.lr"]
    assert "'many'" in dict(err.problems)["optim.batch_size"]


def test_wrong_section_type_and_bad_choice():
    err = _error("task: {name: tracking}\noptim: 5\n")
    problems = dict(err.problems)
    assert "got 'tracking'" in problems["task.name"]
    assert "got 5" in problems["optim"]


def test_missing_task_and_non_mapping_documents():
    assert _error("").problems == [("task", "Field required")]
    assert "expected a mapping" in str(_error("- a\n- b\n"))


def test_yaml_syntax_error_gives_file_line_and_column(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task:\n  name: detection\noptim: {lr: [1, 2}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        RunConfig.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3:")
    assert "invalid YAML" in message
    line, column = message[len(str(path)) + 1 :].split(":")[:2]
    assert line == "3" and 1 <= int(column) <= 20


def test_duplicate_keys_are_refused():
    err = _error("task: detection\noptim:\n  lr: 0.1\n  lr: 0.2\n")
    assert str(err).startswith("run.yaml:4:3: invalid YAML: duplicate key 'lr'")


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml: cannot read"):
        RunConfig.load(tmp_path / "missing.yaml")


def test_validation_error_of_direct_construction_converts():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        RunConfig(task={"name": "detection"}, optim={"lr": 0})
    err = ConfigError.from_validation_error(info.value, "form")
    assert err.problems == [("optim.lr", "Input should be greater than 0 (got 0)")]
    assert str(err) == "form: optim.lr: Input should be greater than 0 (got 0)"


# --------------------------------------------------------------------------- cross-field rules


def test_multitask_requires_tasks():
    err = _error("task: multitask\n")
    assert err.problems == [("task.tasks", "list at least one task for a multitask run")]


def test_tasks_only_allowed_for_multitask():
    err = _error("task: {name: detection, tasks: [detection]}\n")
    assert [p for p, _ in err.problems] == ["task.tasks"]


def test_loss_weights_and_checkpoints_must_name_tasks():
    err = _error(
        "task: {name: multitask, tasks: [detection], loss_weights: {segmentation: 1}}\n"
        "model: {checkpoints: {classification: x}}\n"
    )
    assert [p for p, _ in err.problems] == ["task.loss_weights.segmentation"]
    err = _error("task: {name: multitask, tasks: [detection]}\nmodel: {checkpoints: {classification: x}}\n")
    assert [p for p, _ in err.problems] == ["model.checkpoints.classification"]
    err = _error("task: detection\nmodel: {checkpoints: {detection: x}}\n")
    assert "only used for multitask" in str(err)


def test_misc_field_rules():
    assert RunConfig.from_yaml("task: detection\ncompute: {devices: '2'}\n").compute.devices == 2
    err = _error("task: detection\ncompute: {devices: 0, ray_address: 'not an address'}\n")
    assert [p for p, _ in err.problems] == ["compute.devices", "compute.ray_address"]
    err = _error("task: detection\ndata: {train_split: a, val_split: a}\n")
    assert err.problems == [("data.val_split", "must differ from train_split")]
    err = _error("task: detection\ndata: {val_fraction: 0.95}\n")
    assert [p for p, _ in err.problems] == ["data.val_fraction"]
    err = _error("task: detection\naugmentation: {train: [{name: hflip}, {p: 1}]}\n")
    assert err.problems == [("augmentation.train[1]", "each step needs a 'name'")]


# --------------------------------------------------------------------------- search space


def _space_error(entries: str) -> ConfigError:
    return _error(f"task: detection\nsearch:\n  space:\n{entries}")


def test_search_space_rejects_unknown_paths_with_a_suggestion():
    err = _space_error("    optim.learnin_rate: {type: uniform, low: 0, high: 1}\n")
    assert err.problems == [('search.space["optim.learnin_rate"]', "unknown key (did you mean 'optim.lr'?)")]
    err = _space_error("    nothing.here: {type: choice, values: [1]}\n")
    assert "unknown key 'nothing'" in str(err)


def test_loguniform_needs_a_positive_low():
    err = _space_error("    optim.weight_decay: {type: loguniform, low: 0, high: 0.1}\n")
    assert err.problems == [
        ('search.space["optim.weight_decay"].low', "must be greater than 0 for loguniform (got 0.0)")
    ]
    err = _space_error("    optim.lr: {type: uniform, low: 0.1, high: 0.01}\n")
    assert [p for p, _ in err.problems] == ['search.space["optim.lr"].high']


def test_search_values_are_checked_against_the_field():
    err = _space_error(
        "    optim.scheduler: {type: choice, values: [cosine, linear]}\n"
        "    optim.batch_size: {type: uniform, low: 1, high: 64}\n"
        "    optim.epochs: {type: randint, low: 0, high: 4}\n"
        "    task.name: {type: choice, values: [detection]}\n"
        "    optim: {type: choice, values: [{}]}\n"
    )
    problems = dict(err.problems)
    assert "got 'linear'" in problems['search.space["optim.scheduler"].values[1]']
    assert "randint" in problems['search.space["optim.batch_size"].type']
    assert "got 0" in problems['search.space["optim.epochs"].low']
    assert problems['search.space["task.name"]'] == "not a tunable setting"
    assert "section" in problems["search.space.optim"]


def test_search_param_needs_a_known_type():
    err = _space_error("    optim.lr: {low: 1}\n")
    assert [p for p, _ in err.problems] == ['search.space["optim.lr"].type']
    err = _space_error("    optim.lr: {type: normal, low: 1, high: 2}\n")
    assert "'normal'" in str(err)


# --------------------------------------------------------------------------- overrides and field paths


def test_with_overrides_returns_a_validated_copy():
    base = RunConfig(task={"name": "detection"})
    tuned = base.with_overrides({"optim.lr": 3e-4, "optim.batch_size": "32", "task.loss_weights": {}})
    assert (tuned.optim.lr, tuned.optim.batch_size) == (3e-4, 32)
    assert base.optim.lr is None  # the original is untouched (empty: the recipe chooses)
    searched = base.with_overrides({"search.num_samples": 4})
    assert searched.search.num_samples == 4 and base.search is None


def test_with_overrides_rejects_bad_paths_and_values():
    base = RunConfig(task={"name": "detection"})
    with pytest.raises(ConfigError) as info:
        base.with_overrides({"optim.learning_rate": 0.1, "optimizer.lr": 1})
    assert info.value.problems == [
        ("optim.learning_rate", "unknown key (did you mean 'optim.lr'?)"),
        ("optimizer.lr", "unknown key 'optimizer' (did you mean 'optim'?)"),
    ]
    with pytest.raises(ConfigError, match=r"overrides: optim\.lr: Input should be greater than 0"):
        base.with_overrides({"optim.lr": -1.0})
    with pytest.raises(ConfigError, match="single setting"):
        base.with_overrides({"optim.lr.value": 1})


def test_with_overrides_rederives_the_default_checkpoint():
    base = RunConfig(task={"name": "classification"})
    assert base.with_overrides({"task.name": "detection"}).model.checkpoint == "rt-detr-v2-tiny"
    custom = base.with_overrides({"model.checkpoint": "my/net"})
    assert custom.with_overrides({"task.name": "detection"}).model.checkpoint == "my/net"


def test_config_field_paths_are_leaves_that_overrides_accept():
    paths = config.config_field_paths()
    assert len(paths) == len(set(paths))
    assert {"optim.lr", "optim.batch_size", "search.space", "compute.devices", "version"} <= set(paths)
    assert "optim" not in paths and "search" not in paths
    base = RunConfig(task={"name": "detection"}, search={})
    dumped = base.model_dump()
    for path in paths:  # every path is addressable, and setting its current value changes nothing
        value = dumped
        for key in path.split("."):
            value = value[key]
        assert base.with_overrides({path: value}) == base, path
    tunable = config.tunable_field_paths()
    assert "optim.lr" in tunable and not any(p.startswith(("search.", "task.")) for p in tunable)


# --------------------------------------------------------------------------- schema


def test_json_schema_describes_every_field():
    schema = config.json_schema()
    assert schema == RunConfig.model_json_schema()
    assert schema["required"] == ["task"]
    for section in ("data", "task", "model", "augmentation", "optim", "search", "compute", "tracking"):
        assert section in schema["properties"]
    for name, definition in schema["$defs"].items():
        assert definition.get("additionalProperties") is False, name
        for field, prop in definition["properties"].items():
            assert prop.get("description") and prop.get("title"), f"{name}.{field}"
    optim = schema["$defs"]["OptimConfig"]["properties"]
    lr = {option.get("type"): option for option in optim["lr"]["anyOf"]}  # a number or empty
    assert lr["number"]["exclusiveMinimum"] == 0 and "null" in lr
    assert optim["scheduler"]["enum"] == ["auto", "cosine", "wsd", "step", "plateau", "none"]
    space = schema["$defs"]["SearchConfig"]["properties"]["space"]["additionalProperties"]
    assert space["discriminator"]["propertyName"] == "type"


# --------------------------------------------------------------------------- atomic save


def test_failed_serialisation_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "run.yaml"
    RunConfig(task={"name": "classification"}).save(path)
    before = path.read_bytes()

    def broken_dump(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(yaml_io.yaml, "safe_dump", broken_dump)
    with pytest.raises(RuntimeError):
        RunConfig(task={"name": "detection"}).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.yaml"]


def test_failed_replace_leaves_the_previous_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "run.yaml"
    RunConfig(task={"name": "classification"}).save(path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        assert Path(src).read_text(encoding="utf-8").startswith("data:")  # the new text was fully written
        raise OSError("interrupted")

    monkeypatch.setattr(yaml_io.os, "replace", broken_replace)
    with pytest.raises(OSError):
        RunConfig(task={"name": "detection"}).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.yaml"]


# --------------------------------------------------------------------------- import cost


def test_import_stays_light():
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import engine.config\n"
        "elapsed = time.perf_counter() - t\n"
        "heavy = [m for m in ('torch', 'lightning', 'ray', 'mlflow', 'transformers', 'PySide6', 'numpy')"
        " if m in sys.modules]\n"
        "print(heavy, elapsed)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    heavy, elapsed = out.stdout.rsplit(" ", 1)
    assert heavy == "[]", heavy
    # Typically ~0.1 s; the bound is loose so a busy machine does not fail it.
    assert float(elapsed) < 2.0

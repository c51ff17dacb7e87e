"""The search form's model: generated from the search schema, validated as `lightbox tune` validates."""

import typing

import pytest

from app.training.search_form_model import NO_SPACE, SearchFormModel, entry_key, format_values, parse_values
from engine.config import RunConfig, SearchConfig, SearchParam, tunable_field_paths
from engine.config.type_tree import union_tags, unwrap

RUN = {"task": {"name": "classification"}, "data": {"path": "/data"}, "optim": {"batch_size": 16, "lr": 1e-3}}


@pytest.fixture(scope="module")
def schema():
    from engine.config import json_schema

    return json_schema()


def test_the_form_is_generated_from_the_search_schema(schema):
    model = SearchFormModel(schema)
    assert [f.path for f in model.fields] == [k for k in SearchConfig.model_fields if k != "space"]
    kinds = {tag for member in typing.get_args(unwrap(SearchParam)) for tag in union_tags(member)}
    assert set(model.distributions) == kinds
    assert [f.path for f in model.distributions["quniform"].fields] == ["low", "high", "q"]
    assert [f.path for f in model.distributions["choice"].fields] == ["values"]
    assert list(model.tunable) == tunable_field_paths()
    assert model.tunable["optim.seed"].kind == "int"  # a number without bounds is still a number here
    offered = model.searchable()
    assert sorted(offered) == sorted(tunable_field_paths()) and offered[:2] == ["optim.epochs", "optim.max_steps"]


def test_each_problem_is_at_the_field_the_config_names(schema):
    model = SearchFormModel(schema)
    model.add("optim.lr", 1e-3)
    model.add("optim.batch_size", 16)
    model.add("optim.seed", 0)
    model.add("optim.scheduler", "auto")
    model.set_value("optim.lr", "high", -1.0)
    model.set_value("optim.batch_size", "low", "abc")
    model.set_kind("optim.seed", "uniform")
    model.set_kind("optim.scheduler", "grid")
    model.set_value("optim.scheduler", "values", ["cosine", "nope"])
    model.set("num_samples", 0)
    model.set("grace_period", None)
    config, problems = model.validate(RUN)
    assert config is None
    assert problems[entry_key("optim.lr", "high")].startswith("must be greater than low")
    assert "valid integer" in problems[entry_key("optim.batch_size", "low")]
    assert problems[entry_key("optim.seed", "type")] == "integer setting: use randint, quniform or choice"
    assert problems[entry_key("optim.scheduler", "values")].startswith("[1]: Input should be 'auto'")
    assert "greater than or equal to 1" in problems["num_samples"]
    assert problems["grace_period"] == "required: type a number"


def test_no_searched_setting_is_no_search(schema):
    model = SearchFormModel(schema)
    config, problems = model.validate(RUN)
    assert config is None and problems == {"space": NO_SPACE}


def test_every_number_choice_and_switch_starts_with_a_valid_distribution(schema):
    model = SearchFormModel(schema)
    defaults = RunConfig.from_dict(RUN).model_dump(mode="json")
    for path, spec in model.tunable.items():
        if spec.kind in ("int", "float", "enum", "bool", "tristate"):
            section, key = path.split(".")
            model.add(path, defaults[section][key])
    config, problems = model.validate(RUN)
    assert problems == {} and config is not None
    assert config.search.space["optim.lr"].type == "loguniform"
    assert (config.search.space["optim.lr"].low, config.search.space["optim.lr"].high) == pytest.approx((1e-4, 1e-2))
    assert config.search.space["optim.batch_size"].type == "randint"
    assert config.search.space["model.pretrained"].values == [True, False]


def test_the_section_loads_back_as_written(schema):
    model = SearchFormModel(schema)
    model.add("optim.lr", 1e-3)
    model.set_kind("optim.lr", "choice")
    model.set_value("optim.lr", "values", [1e-3, 1e-2])
    model.add("optim.batch_size", 16)
    model.set("num_samples", 4)
    model.set("scheduler", "fifo")
    config, problems = model.validate(RUN)
    assert problems == {}
    again = SearchFormModel(schema)
    again.load(RunConfig.from_yaml(config.to_yaml()).search)
    assert again.section() == model.section()
    again.load(None)
    assert again.space == {} and again.values["num_samples"] == 10


def test_the_metric_follows_the_task_until_the_user_picks_one(schema):
    model = SearchFormModel(schema)
    model.follow_task("detection")
    assert (model.values["metric"], model.values["mode"]) == ("val/map", "max")
    model.follow_task("multitask")
    assert (model.values["metric"], model.values["mode"]) == ("val/loss", "min")
    model.choose_metric("val/loss", "classification")
    model.follow_task("segmentation")
    assert (model.values["metric"], model.values["mode"]) == ("val/loss", "min")


def test_the_task_scores_are_what_each_task_ranks_its_checkpoints_by():
    from app.training.search_form_model import TASK_SCORES
    from engine.tasks.registry import get_task

    for task, metric in TASK_SCORES.items():
        assert get_task(task).module_class.monitor == metric


def test_values_are_typed_with_or_without_brackets():
    assert parse_values("8, 16, 32") == [8, 16, 32]
    assert parse_values("[cosine, step]") == ["cosine", "step"]
    assert parse_values("") is None
    assert format_values([0.001, True, "a b"]) == "0.001, true, a b"

"""Run flags are generated from RunConfig's schema: the same flags for train, tune and lr-find."""

import pytest

from engine.cli import build_parser, subparsers_of
from engine.config import RunConfig, config_field_paths
from engine.run_flags import config_from_flags, run_flags


def _options(verb: str) -> set[str]:
    parser = subparsers_of(build_parser()).choices[verb]
    return {option for action in parser._actions for option in action.option_strings}


def _run_options() -> set[str]:
    return {option for flag in run_flags() if not flag.search for option in flag.options}


def test_train_tune_and_lr_find_take_the_same_run_flags():
    expected = _run_options() | {"--config"}
    for verb in ("train", "tune", "lr-find"):
        assert expected <= _options(verb), (verb, sorted(expected - _options(verb)))
    search = {option for flag in run_flags() if flag.search for option in flag.options}
    assert search <= _options("tune") and not search & (_options("train") | _options("lr-find"))


def test_every_setting_of_the_config_is_a_flag_named_by_its_key():
    settings = [p for p in config_field_paths() if p != "version"]
    assert [flag.key for flag in run_flags()] == settings
    train = _options("train")
    assert {f"--{key}" for key in settings if not key.startswith("search.")} <= train
    assert {f"--{key}" for key in settings} <= _options("tune")
    # The short flags people type stay, each naming the same setting as its dotted flag.
    assert {
        "--data",
        "--task",
        "--model",
        "--epochs",
        "--lr",
        "--batch-size",
        "--image-size",
        "--devices",
        "--tracking-uri",
        "--workspace",
        "--run-name",
    } <= train


def _config(verb: str, *argv: str) -> RunConfig:
    parser = build_parser()
    return config_from_flags(parser.parse_args([verb, *argv]))


def test_dotted_flags_set_the_settings_they_name(tmp_path):
    config = _config(
        "train",
        "--task",
        "classification",
        "--data",
        str(tmp_path),
        "--optim.weight_decay",
        "0.01",
        "--compute.channels_last",
        "false",
        "--model.pretrained",
        "no",
        "--devices",
        "2",
        "--augmentation.val",
        "[{name: LongestMaxSize, max_size: 64}]",
        "--optim.scheduler",
        "step",
        "--lr",
        "0.1",
    )
    assert config.optim.weight_decay == 0.01 and config.optim.lr == 0.1 and config.optim.scheduler == "step"
    assert config.compute.channels_last is False and config.model.pretrained is False
    assert config.compute.devices == 2 and config.data.path == str(tmp_path)
    assert config.augmentation.val == [{"name": "LongestMaxSize", "max_size": 64}]
    # The short and the dotted flag are one setting: the later one wins.
    assert _config("lr-find", "--task", "classification", "--lr", "0.1", "--optim.lr", "0.2").optim.lr == 0.2
    tuned = _config("tune", "--task", "classification", "--search.num_samples", "3", "--scheduler", "fifo")
    assert tuned.search.num_samples == 3 and tuned.search.scheduler == "fifo"


def test_flags_override_the_config_file(tmp_path):
    path = tmp_path / "run.yaml"
    RunConfig.from_dict({"task": {"name": "classification"}, "optim": {"lr": 0.5, "seed": 1}}).save(path)
    config = _config("lr-find", "--config", str(path), "--optim.seed", "7")
    assert config.optim.seed == 7 and config.optim.lr == 0.5


@pytest.mark.parametrize(
    "argv, said",
    [
        (["--compute.compile", "maybe"], "--compute.compile: expected true or false, got 'maybe'"),
        (["--optim.scheduler", "fast"], "--optim.scheduler: invalid choice: 'fast'"),
        (["--task.tasks", "[a, "], "--task.tasks: not a YAML value"),
    ],
)
def test_a_bad_flag_value_is_refused_naming_the_flag(capsys, argv, said):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--task", "classification", *argv])
    assert exit_.value.code == 2 and said in capsys.readouterr().err

"""``python -m engine``: the engine's verbs on the command line.

Each verb imports what it needs when it runs, so ``lightbox check`` never pays
for torch and nothing here imports Qt. The ``lightbox`` command (``app.cli``)
is this parser plus the desktop app's verbs; engine/ never imports app/.

A feature with verbs of its own keeps them in its own module, which
:data:`VERB_MODULES` lists: each has ``add_verbs(subparsers)``.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import sys
import threading
import traceback
from typing import NoReturn

from engine.run_flags import add_run_flags, config_from_flags
from engine.workspace import DEFAULT_WORKSPACE

# Modules that add verbs of their own (light to import: argparse set-up only).
VERB_MODULES: tuple[str, ...] = (
    "engine.export.cli",
    "engine.orchestration.ray_cli",
    "engine.orchestration.lr_find",
    "engine.orchestration.label_errors_cli",
)


def _cmd_check(args: argparse.Namespace) -> int:
    from engine.data.health import check_folder

    def show_progress(done: int, total: int) -> None:
        print(f"\rchecking images {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    report = check_folder(
        args.folder,
        deep=args.deep,
        check_files=not args.no_files,
        workers=args.workers,
        progress=show_progress if args.progress and sys.stderr.isatty() else None,
    )
    if args.json:
        print(report.to_json())
    else:
        print(report.to_text(limit=args.limit))
    return report.exit_code


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from engine.data.sample import write_sample_dataset

    out = write_sample_dataset(args.out, train_images=args.train, val_images=args.val, seed=args.seed)
    print(f"sample dataset written to {out}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.data.problems import DatasetError
    from engine.orchestration.errors import TrainingError
    from engine.orchestration.result import print_result
    from engine.orchestration.training import train

    try:
        if args.resume:
            config = config_from_flags(args) if (args.config or args.task) else None
            result = train(
                config,
                resume_run_id=args.resume,
                tracking_uri=args.tracking_uri,
                workspace=args.workspace,
                progress=args.progress,
            )
        else:
            config = config_from_flags(args)
            if config.search is not None:
                # Training one run would silently ignore the search space.
                where = args.config or "the run configuration"
                raise ConfigError(
                    [
                        (
                            "search",
                            "a search runs with `lightbox tune --config FILE`; "
                            "`lightbox train` trains one run (remove the search section)",
                        )
                    ],
                    where,
                )
            from engine.orchestration.ray_cli import is_job_address, submit_from_args

            if is_job_address(args.ray_address or config.compute.ray_address):
                return submit_from_args(config, args, "train")  # a Ray job on the cluster
            result = train(config, tracking_uri=args.tracking_uri, progress=args.progress)
    except (ConfigError, DatasetError, TrainingError, ValueError, OSError) as exc:
        # ModelLoadError and DatasetError are ValueError / Exception subclasses with clear messages.
        return report_failure("train", exc, 2)
    except Exception as exc:  # a crash inside training: the traceback for a bug report, then the one line
        traceback.print_exc()
        return report_failure("train", exc, 1)
    print_result(result)
    return 0 if result.status == "FINISHED" else (3 if result.status == "KILLED" else 1)


def report_failure(verb: str, exc: BaseException, code: int) -> int:
    """Print why ``verb`` failed as its last line, ``lightbox VERB: reason`` (the desktop app shows
    that line; the run, where one was opened, carries the same reason as its ``lightbox.error`` tag)."""
    from engine.tracking.run_error import describe_failure

    print(f"lightbox {verb}: {describe_failure(exc)}", file=sys.stderr, flush=True)
    return code


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if Path(args.run_id).is_dir():  # an export folder, not a run id
        from engine.export.cli import eval_export

        return eval_export(args)
    from engine.data.problems import DatasetError
    from engine.orchestration.errors import TrainingError
    from engine.orchestration.evaluate import evaluation_report

    if args.data:
        print("lightbox eval: --data is for an export folder; a run is evaluated on its own dataset", file=sys.stderr)
        return 2
    split = args.split or "val"
    if split not in ("val", "train", "all"):
        print(f"lightbox eval: --split of a run is val, train or all, not {split!r}", file=sys.stderr)
        return 2
    try:
        report, path = evaluation_report(
            args.run_id, split=split, out=args.out, tracking_uri=args.tracking_uri, workspace=args.workspace
        )
    except (TrainingError, DatasetError) as exc:
        print(f"lightbox eval: {exc}", file=sys.stderr)
        return 2
    from engine.metrics.report import printed_summary

    print(printed_summary(report, path, as_json=args.json))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    if Path(args.run_id).is_dir():  # an export folder, not a run id
        from engine.export.cli import predict_export

        return predict_export(args)
    from engine.orchestration.errors import TrainingError
    from engine.orchestration.evaluate import predict_run

    if len(args.images) != 1:
        print("lightbox predict: a run id takes one folder of images", file=sys.stderr)
        return 2
    try:
        out = predict_run(
            args.run_id,
            args.images[0],
            args.out,
            tracking_uri=args.tracking_uri,
            workspace=args.workspace,
            batch_size=args.batch_size,
        )
    except TrainingError as exc:
        print(f"lightbox predict: {exc}", file=sys.stderr)
        return 2
    print(f"predictions written to {out}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from engine.catalog.presets import list_presets

    for preset in list_presets(args.task):
        hub = f" (like {preset.hub_id})" if preset.hub_id else ""
        print(f"{preset.name:16s} {', '.join(preset.tasks):30s} {preset.description}{hub}")
    return 0


def _add_tracking(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the workspace's SQLite store)"
    )
    parser.add_argument("--workspace", help=f"workspace folder (default: $LIGHTBOX_WORKSPACE or ./{DEFAULT_WORKSPACE})")


def build_parser() -> argparse.ArgumentParser:
    from engine.config import SINGLE_TASKS  # the run flags below load engine.config anyway

    parser = argparse.ArgumentParser(
        prog="lightbox", description="Lightbox: from a COCO dataset to a trained, exported vision model."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser(
        "check",
        help="list every problem in a COCO dataset folder",
        description="Exit status: 0 clean, 1 problems found, 2 unreadable.",
    )
    check.add_argument("folder", help="dataset folder (or a COCO JSON file)")
    check.add_argument("--deep", action="store_true", help="decode every image fully (slower)")
    check.add_argument("--no-files", action="store_true", help="check the JSON only, not the image files")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--limit", type=int, default=None, help="print at most this many problems")
    check.add_argument("--workers", type=int, default=8, help="threads reading image files")
    check.add_argument("--no-progress", dest="progress", action="store_false")
    check.set_defaults(func=_cmd_check)

    data = sub.add_parser("demo-data", help="write the generated sample COCO dataset")
    data.add_argument("out", help="folder to write")
    data.add_argument("--train", type=int, default=48, help="training images")
    data.add_argument("--val", type=int, default=16, help="validation images")
    data.add_argument("--seed", type=int, default=0)
    data.set_defaults(func=_cmd_demo_data)

    tr = sub.add_parser(
        "train",
        help="train one model and track it in MLflow",
        description="Prints a final JSON line with the run id, best checkpoint and metrics. "
        "Exit status: 0 finished, 1 failed, 2 bad input, 3 stopped on request.",
    )
    add_run_flags(tr)
    tr.add_argument("--resume", metavar="RUN_ID", help="continue an earlier run from its newest checkpoint")
    tr.add_argument("--no-progress", dest="progress", action="store_false")
    tr.add_argument(
        "--ray-address",
        help="a Ray cluster's dashboard URL (http://host:8265): submit the run there as a Ray job and print its id",
    )
    from engine.orchestration.ray_cli import add_job_flags

    add_job_flags(tr)
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser(
        "eval",
        help="evaluate a run's best checkpoint (or an export on --data): per-class figures, curves, per-image errors",
    )
    ev.add_argument("run_id", help="run id, or an export folder (lightbox export) evaluated on --data")
    ev.add_argument(
        "--split",
        help="a run: val (default), train or all; an export: the split of --data (default: its only one, else val)",
    )
    ev.add_argument("--out", help="folder for evaluation.json and its plots (default: the run folder's evaluation/)")
    ev.add_argument("--data", help="an export's labelled dataset folder")
    ev.add_argument("--backend", choices=["onnx", "torch"], default="onnx", help="for an export folder")
    ev.add_argument("--batch-size", type=int, default=8, help="for an export folder")
    ev.add_argument("--json", action="store_true", help="print the report's path and summary as one JSON line")
    _add_tracking(ev)
    ev.set_defaults(func=_cmd_eval)

    pr = sub.add_parser("predict", help="predict with a run's best checkpoint on a folder of images")
    pr.add_argument("run_id", help="run id, or an export folder (lightbox export)")
    pr.add_argument("images", nargs="+", help="folder of images (an export also takes files and globs)")
    pr.add_argument("--backend", choices=["onnx", "torch"], default="onnx", help="for an export folder")
    pr.add_argument("--out", default="predictions.json")
    pr.add_argument("--batch-size", type=int, default=8)
    _add_tracking(pr)
    pr.set_defaults(func=_cmd_predict)

    mo = sub.add_parser("models", help="list the offline model presets")
    mo.add_argument("--task", choices=SINGLE_TASKS)
    mo.set_defaults(func=_cmd_models)
    for name in VERB_MODULES:
        importlib.import_module(name).add_verbs(sub)
    return parser


def subparsers_of(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The verb table of a parser made by :func:`build_parser` (to add more verbs)."""
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def run_verb(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def exit_process(code: int) -> NoReturn:
    """End a ``lightbox`` / ``python -m engine`` process with ``code``.

    Once Ray is loaded, the interpreter's own teardown (Ray's core worker, gRPC) takes about
    1.7 s after the work is done, once per search (bench/tune_efficiency.py). Everything a
    normal exit does that matters still happens (other threads finish, exit handlers run:
    Ray's shutdown, logging's flush); only that teardown is skipped.
    """
    if "ray" not in sys.modules:
        sys.exit(code)
    import ray

    if getattr(ray, "is_initialized", lambda: False)():
        ray.shutdown()  # now: left to its exit handler, it first sleeps 0.5 s for log lines in flight
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_verb(parser, args)


if __name__ == "__main__":
    exit_process(main())

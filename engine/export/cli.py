"""Verbs: ``lightbox export`` (and the export half of ``lightbox predict``)."""

from __future__ import annotations

import argparse
import sys

from .build import FORMATS, PARITY_IMAGES
from .registry import DEFAULT_ALIAS
from .tolerance import Tolerance


def _cmd_export(args: argparse.Namespace) -> int:
    from .build import export_run
    from .manifest import ExportError
    from .source import best_run

    def say(text: str) -> None:
        print(text, file=sys.stderr)

    try:
        if args.best:
            if not args.experiment:
                raise ExportError("--best needs --experiment NAME")
            if args.run_id:
                raise ExportError("give a run id or --best --experiment NAME, not both")
            best = best_run(args.experiment, task=args.task, tracking_uri=args.tracking_uri, workspace=args.workspace)
            run_id = best.run_id
            say(
                f"best finished {best.task} run of experiment '{args.experiment}': {run_id} "
                f"({best.metric} {best.value:.4f}, best of {best.compared})"
            )
        elif args.run_id:
            run_id = args.run_id
        else:
            raise ExportError("give a run id, or --best --experiment NAME")
        if args.register:
            from .registry import registration_problem

            problem = registration_problem(args.register, args.alias)
            if problem:  # before the export, which would otherwise be written and then not registered
                raise ExportError(f"--register/--alias: {problem}")
        tol = Tolerance(
            metric=args.max_metric_diff, per_class=args.max_class_diff, atol=args.atol, min_agreement=args.min_agreement
        )
        manifest = export_run(
            run_id,
            args.out,
            formats=args.format,
            force=args.force,
            tolerance=tol,
            parity_images=args.parity_images,
            exporter=args.exporter,
            dynamic_size=not args.fixed_size,
            tracking_uri=args.tracking_uri,
            workspace=args.workspace,
            say=say,
        )
        if args.register:
            from .registry import register_export

            version = register_export(args.out, args.register, alias=args.alias, tracking_uri=args.tracking_uri)
            say(f"registered {version['uri']} (version {version['version']}, models:/{args.register}@{args.alias})")
    except (ExportError, ValueError, OSError) as exc:
        print(f"lightbox export: {exc}", file=sys.stderr)
        return 2
    print(f"export written to {args.out} (run {manifest['source']['run_id']}, {manifest['task']})")
    return 0


def predict_export(args: argparse.Namespace) -> int:
    """``lightbox predict EXPORT_DIR IMAGES...`` (engine.cli dispatches here for export folders)."""
    from .manifest import ExportError
    from .predict import predict_images

    try:
        summary = predict_images(
            args.run_id,
            args.images,
            args.out,
            backend=getattr(args, "backend", "onnx"),
            batch_size=args.batch_size,
            progress=sys.stderr.isatty(),
        )
    except (ExportError, ValueError, OSError) as exc:
        print(f"lightbox predict: {exc}", file=sys.stderr)
        return 2
    for name, why in summary["skipped"]:
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"{summary['results']} results for {summary['images']} images written to {args.out}")
    return 0


def eval_export(args: argparse.Namespace) -> int:
    """``lightbox eval EXPORT_DIR --data DIR`` (engine.cli dispatches here for export folders)."""
    from engine.data.problems import DatasetError
    from engine.metrics.report import printed_summary

    from .evaluate_export import evaluate_export
    from .manifest import ExportError

    if not args.data:
        print("lightbox eval: an export is evaluated on labelled data: give --data DIR", file=sys.stderr)
        return 2
    try:
        report, path = evaluate_export(
            args.run_id,
            args.data,
            out=args.out,
            split=args.split,
            backend=args.backend,
            batch_size=args.batch_size,
            workspace=args.workspace,
        )
    except (ExportError, DatasetError, ValueError, OSError) as exc:
        print(f"lightbox eval: {exc}", file=sys.stderr)
        return 2
    print(printed_summary(report, path, as_json=args.json))
    return 0


def add_verbs(sub: argparse._SubParsersAction) -> None:
    ex = sub.add_parser(
        "export",
        help="export a run to a Hugging Face folder and ONNX (parity checked)",
        description="Exit status: 0 exported, 2 bad input or failed parity (nothing written).",
    )
    ex.add_argument("run_id", nargs="?", help="run to export (or --best --experiment NAME)")
    ex.add_argument("--format", default=",".join(FORMATS), help=f"comma-separated: {', '.join(FORMATS)} (default all)")
    ex.add_argument("--out", required=True, help="export folder to write")
    ex.add_argument("--force", action="store_true", help="replace an existing export folder (once complete)")
    ex.add_argument("--best", action="store_true", help="the experiment's best finished run by its task metric")
    ex.add_argument("--experiment", help="experiment for --best")
    ex.add_argument(
        "--task",
        help="for --best: compare only this task's runs (needed when the experiment holds runs of several tasks)",
    )
    ex.add_argument(
        "--max-metric-diff",
        type=float,
        default=Tolerance.metric,
        help="largest allowed |ONNX - checkpoint| of the task metric (mAP, accuracy, mIoU) on the "
        "validation images (default %(default)s)",
    )
    ex.add_argument(
        "--max-class-diff",
        type=float,
        default=Tolerance.per_class,
        help="largest allowed |ONNX - checkpoint| of one class's AP / F1 / IoU (default %(default)s)",
    )
    ex.add_argument(
        "--atol",
        type=float,
        default=None,
        help="also refuse a raw-output difference above this (default: reported only)",
    )
    ex.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        help="also refuse a share of matched decisions below this (default: reported only)",
    )
    ex.add_argument(
        "--parity-images", type=int, default=PARITY_IMAGES, help="validation images compared (default %(default)s)"
    )
    ex.add_argument("--exporter", choices=["auto", "dynamo", "torchscript"], default="auto")
    ex.add_argument(
        "--fixed-size",
        action="store_true",
        help="keep model.onnx's height/width fixed at the run's size (dynamic where the model allows it)",
    )
    ex.add_argument("--register", metavar="NAME", help="also register the export as an MLflow model version")
    ex.add_argument("--alias", default=DEFAULT_ALIAS, help="alias set on the registered version (default: %(default)s)")
    ex.add_argument("--tracking-uri", help="MLflow tracking URI")
    ex.add_argument("--workspace", help="workspace folder")
    ex.set_defaults(func=_cmd_export)

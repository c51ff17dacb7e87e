"""``lightbox label-errors``: the verb of :mod:`engine.orchestration.label_errors`.

Light to import (argparse only): ``engine.cli`` builds every verb's parser at start-up.
"""

from __future__ import annotations

import argparse
import sys

DEFAULT_FOLDS = 4  # engine.orchestration.label_errors.DEFAULT_FOLDS, without importing it here
RANKINGS = ("self_confidence", "normalized_margin")  # engine.metrics.label_quality.RANKINGS


def add_verbs(sub: argparse._SubParsersAction) -> None:
    from engine.run_flags import add_run_flags

    verb = sub.add_parser(
        "label-errors",
        help="find the labels that are probably wrong, from out-of-fold predictions (or a finished run's)",
        description="Trains --folds models, each on all folds but one, and scores the held-out fold "
        "(a model never scores an image it trained on); --run RUN_ID scores that run's validation split "
        "instead. Writes every annotation with a label-quality score, most suspect first. "
        "Exit status: 0 written, 1 a fold run failed, 2 bad input.",
    )
    add_run_flags(verb)
    verb.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="folds, and so training runs (at least 2)")
    verb.add_argument("--split", help="the split whose labels are checked (default: the run's training split)")
    verb.add_argument("--out", default="errors.json", help="the file to write (default: errors.json)")
    verb.add_argument(
        "--run", metavar="RUN_ID", help="score the images this finished run did not train on (no training)"
    )
    verb.add_argument("--ranking", choices=RANKINGS, default=RANKINGS[0], help="classification: how labels are ranked")
    verb.add_argument("--no-progress", dest="progress", action="store_false")
    verb.set_defaults(func=run_label_errors)


def run_label_errors(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.data.problems import DatasetError
    from engine.orchestration.errors import TrainingError
    from engine.orchestration.label_error_scores import FoldRunFailed, summary_lines

    given = [flag for flag, value in (("--config", args.config), ("--data", args.data), ("--task", args.task)) if value]
    if args.run and given:
        print(
            f"lightbox label-errors: --run scores a finished run with its own configuration and data; "
            f"drop {', '.join(given)}",
            file=sys.stderr,
        )
        return 2
    try:
        if args.run:
            from engine.orchestration.label_errors import score_run

            result = score_run(
                args.run, out=args.out, ranking=args.ranking, tracking_uri=args.tracking_uri, workspace=args.workspace
            )
        else:
            from engine.orchestration.label_errors import find_label_errors
            from engine.run_flags import config_from_flags

            result = find_label_errors(
                config_from_flags(args),
                folds=args.folds,
                split=args.split,
                out=args.out,
                ranking=args.ranking,
                tracking_uri=args.tracking_uri,
                progress=args.progress,
            )
    except FoldRunFailed as exc:
        return _failed(exc, 1)
    except (ConfigError, DatasetError, TrainingError, ImportError, ValueError, OSError) as exc:
        return _failed(exc, 2)
    print("\n".join(summary_lines(result.errors_file, result.entries)), file=sys.stdout)
    return 0


def _failed(exc: BaseException, code: int) -> int:
    """``lightbox label-errors: reason`` as the last line, as every verb ends on a failure."""
    from engine.tracking.run_error import describe_failure

    print(f"lightbox label-errors: {describe_failure(exc)}", file=sys.stderr, flush=True)
    return code

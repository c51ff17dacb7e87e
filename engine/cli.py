"""``lightbox`` / ``python -m engine``: the engine's verbs on the command line.

Each verb imports what it needs when it runs, so ``lightbox check`` never pays
for torch and nothing here imports Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_WORKSPACE = "lightbox-workspace"


def default_workspace() -> Path:
    return Path(os.environ.get("LIGHTBOX_WORKSPACE", DEFAULT_WORKSPACE)).expanduser()


def _cmd_check(args: argparse.Namespace) -> int:
    from engine.data.health import check_folder

    progress = None
    if args.progress and sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            print(f"\rchecking images {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    report = check_folder(args.folder, deep=args.deep, check_files=not args.no_files,
                          workers=args.workers, progress=progress)
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.data.health import check_folder
    from engine.data.sample import write_sample_dataset

    workspace = Path(args.workspace) if args.workspace else default_workspace()
    dataset = workspace / "datasets" / "shapes"
    if not (dataset / "annotations").is_dir():
        write_sample_dataset(dataset)
        print(f"sample dataset written to {dataset}")
    report = check_folder(dataset)
    print(report.to_text())
    return report.exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightbox", description="Lightbox: from a COCO dataset to a trained, exported vision model.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = sub.add_parser("check", help="list every problem in a COCO dataset folder",
                           description="Exit status: 0 clean, 1 problems found, 2 unreadable.")
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

    demo = sub.add_parser("demo", help="write the sample dataset into the workspace and check it")
    demo.add_argument("--workspace", help=f"workspace folder (default: $LIGHTBOX_WORKSPACE or ./{DEFAULT_WORKSPACE})")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

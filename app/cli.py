"""``lightbox``: the engine's verbs plus the desktop app's (``gui``, ``demo``).

The app owns this command, so the headless engine never imports Qt or app/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli import build_parser, exit_process, run_verb, subparsers_of
from engine.workspace import DEFAULT_WORKSPACE, default_workspace

_WORKSPACE_HELP = f"workspace folder (default: $LIGHTBOX_WORKSPACE or ./{DEFAULT_WORKSPACE})"


def _open_app(folder: Path | str | None, workspace: Path | str | None, **options) -> int:
    from app.main import run  # Qt is imported only when a window is wanted

    where = Path(workspace or default_workspace()).expanduser().resolve()
    print(
        f"workspace: {where} (runs, exports and settings; choose another with --workspace or $LIGHTBOX_WORKSPACE)",
        flush=True,
    )
    return run(folder, where, **options)


def _cmd_gui(args: argparse.Namespace) -> int:
    reopen_last = args.folder is None and args.config is None
    return _open_app(args.folder, args.workspace, reopen_last=reopen_last, config=args.config)


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.data.health import check_folder
    from engine.data.sample import write_sample_dataset

    workspace = Path(args.workspace) if args.workspace else default_workspace()
    dataset = workspace / "datasets" / "shapes"
    if not (dataset / "annotations").is_dir():
        write_sample_dataset(dataset)
        print(f"sample dataset written to {dataset}")
    if args.gui:
        return _open_app(dataset, workspace)
    report = check_folder(dataset)
    print(report.to_text())
    return report.exit_code


def add_app_verbs(sub: argparse._SubParsersAction) -> None:
    gui = sub.add_parser("gui", help="open the desktop app (on a dataset folder, if given)")
    gui.add_argument("folder", nargs="?", help="dataset folder to open")
    gui.add_argument("--workspace", help=_WORKSPACE_HELP)
    gui.add_argument(
        "--config",
        metavar="RUN_YAML",
        help="load this run or search configuration into the Train tab's forms (without DIR: open its dataset); "
        "a config that cannot be loaded is shown in the Train tab, naming the file and the key",
    )
    gui.set_defaults(func=_cmd_gui)

    demo = sub.add_parser("demo", help="write the sample dataset into the workspace and open it in the app")
    demo.add_argument("--workspace", help=_WORKSPACE_HELP)
    demo.add_argument(
        "--no-gui",
        dest="gui",
        action="store_false",
        help="print the sample dataset's health report instead of opening the app",
    )
    demo.set_defaults(func=_cmd_demo)


def build_app_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    add_app_verbs(subparsers_of(parser))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_app_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        return _open_app(None, None, reopen_last=True)  # plain `lightbox`: back to the last dataset
    return run_verb(parser, args)


def console() -> None:
    """The ``lightbox`` command."""
    exit_process(main())


if __name__ == "__main__":
    console()

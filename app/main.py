"""Start the desktop app: ``lightbox``, ``lightbox gui [DIR]``, ``lightbox demo``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

_STARTED = time.perf_counter()


def run(
    folder: str | Path | None = None,
    workspace: str | Path | None = None,
    *,
    exit_after_show: bool = False,
    reopen_last: bool = False,
    config: str | Path | None = None,
) -> int:
    """Open the main window and run the event loop.

    The window opens ``folder`` if given, else the dataset ``config`` names, else
    (``reopen_last``) the last dataset of the workspace that still exists, else shows the
    start page. ``config`` (a run or search config) fills the Train tab's forms.
    """
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from engine.workspace import default_workspace

    from .main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Lightbox")
    style = Path(__file__).with_name("style.qss")
    if style.is_file():
        app.setStyleSheet(style.read_text())
    window = MainWindow(workspace or default_workspace())
    window.show()
    if folder is None and config is not None:
        folder = dataset_of_config(config)
    if folder is not None:
        window.open_folder(folder)
    elif reopen_last:
        last = next((f for f in window.recent_datasets() if Path(f).is_dir()), None)
        if last is not None:
            window.open_folder(last)
    if config is not None:
        window.load_run_config(config)
    if exit_after_show:
        # For start-up timing: report when the first frame is up, then leave.
        def report():
            print(f"window shown after {time.perf_counter() - _STARTED:.2f} s", flush=True)
            app.quit()

        QTimer.singleShot(0, report)
    code = app.exec()
    # Join what still runs in the background (the check was cancelled on close; an import
    # that started after the window came up finishes) before the interpreter tears down.
    from PySide6.QtCore import QThreadPool

    QThreadPool.globalInstance().waitForDone()
    return code


def dataset_of_config(config: str | Path) -> Path | None:
    """The dataset folder a run config names, if it loads and the folder is there (its errors are
    shown by the Train tab when the window loads it)."""
    from engine.config import RunConfig

    try:
        path = Path(RunConfig.load(config).data.path)
    except (ValueError, OSError):
        return None
    return path if path.is_dir() else None


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--exit-after-show"]
    raise SystemExit(run(args[0] if args else None, exit_after_show="--exit-after-show" in sys.argv))

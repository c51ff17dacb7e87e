"""Where a user's runs, datasets and settings live when nothing else is said.

One definition for the CLI, the tracking store, the launcher and the app, so that
they all agree on the same folder (and no module has to import the CLI for it).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_WORKSPACE = "lightbox-workspace"
WORKSPACE_ENV = "LIGHTBOX_WORKSPACE"


def default_workspace() -> Path:
    """``$LIGHTBOX_WORKSPACE``, else ``./lightbox-workspace`` (not resolved)."""
    return Path(os.environ.get(WORKSPACE_ENV, DEFAULT_WORKSPACE)).expanduser()

"""The import contracts of pyproject.toml ([tool.importlinter]) hold: no import circles."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def test_no_package_has_an_import_circle():
    # import-linter counts every import statement, those inside functions too: a circle
    # postponed into a function is still a circle.
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--contract", "no-import-circles"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "KEPT" in done.stdout

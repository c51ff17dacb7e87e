"""The layering rules of DESIGN.md, enforced.

The import rules are import-linter contracts in pyproject.toml ([tool.importlinter]); these
tests run them, and check on a copy of the tree that each one really fails on a violation.
What import-linter cannot see, which heavy libraries a module pulls in when imported,
is checked by importing.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The no-import-circles contract has its own test (test_import_contracts.py).
LAYER_CONTRACTS = ("engine-layers", "engine-headless", "app-models-qt-free")


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    contracts = [arg for cid in LAYER_CONTRACTS for arg in ("--contract", cid)]
    # cwd first on the path, so a copied tree is analysed rather than the installed one.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), *contracts, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_layer_contracts_hold():
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.count(" KEPT") == len(LAYER_CONTRACTS), done.stdout[-2000:]


def test_each_contract_fails_on_a_violation(tmp_path):
    for package in ("engine", "app"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # Imports inside functions count too: postponing one does not make it allowed.
    (tmp_path / "engine" / "data" / "_upward.py").write_text("def f():\n    import engine.tasks.registry\n")
    (tmp_path / "engine" / "metrics" / "_qt.py").write_text("def f():\n    from PySide6 import QtCore\n")
    (tmp_path / "engine" / "models" / "_app.py").write_text("import app.dataset.session\n")
    chart_data = tmp_path / "app" / "training" / "chart_data.py"
    chart_data.write_text(chart_data.read_text() + "\nimport pyqtgraph\n")

    done = _lint_imports(tmp_path, "--no-cache")
    out = done.stdout
    assert done.returncode == 1, out[-4000:] + done.stderr[-2000:]
    assert out.count(" BROKEN") == len(LAYER_CONTRACTS), out[-4000:]
    for chain in (
        "engine.data._upward -> engine.tasks.registry",
        "engine.metrics._qt -> PySide6",
        "engine.models._app -> app.dataset.session",
        "app.training.chart_data -> pyqtgraph",
    ):
        assert chain in out, f"{chain} not reported:\n{out[-4000:]}"


def test_browsing_modules_stay_light():
    # The app imports these at start-up; torch and lightning (seconds to import) must stay out.
    code = (
        "import sys; import engine.config, engine.data.coco_index, engine.data.health, "
        "engine.data.folders, engine.data.images, engine.cli; "
        "heavy = [m for m in ('torch', 'lightning', 'ray', 'mlflow', 'transformers', 'PySide6') "
        "if m in sys.modules]; print(heavy); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

"""The layering rules of DESIGN.md, enforced."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qtpy", "shiboken6")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_under_engine_imports_qt():
    offenders = []
    files = sorted((ROOT / "engine").rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in _imported_modules(path):
            if name.split(".")[0] in QT_MODULES:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_no_module_under_engine_imports_app():
    offenders = [f"{path.relative_to(ROOT)} imports {name}"
                 for path in sorted((ROOT / "engine").rglob("*.py"))
                 for name in _imported_modules(path) if name.split(".")[0] == "app"]
    assert not offenders, "\n".join(offenders)


def test_engine_modules_do_not_import_the_cli():
    # The CLI sits on top; a library module importing it makes an import circle.
    offenders = [str(path.relative_to(ROOT)) for path in sorted((ROOT / "engine").rglob("*.py"))
                 if path.name not in ("cli.py", "__main__.py") and "engine.cli" in _imported_modules(path)]
    assert not offenders, offenders


def test_the_detector_sees_a_qt_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from PySide6 import QtCore\n")
    assert "PySide6" in _imported_modules(bad)


def test_browsing_modules_stay_light():
    # The app imports these at start-up; torch and lightning (seconds to import) must stay out.
    code = ("import sys; import engine.config, engine.data.coco_index, engine.data.health, "
            "engine.data.folders, engine.data.images, engine.cli; "
            "heavy = [m for m in ('torch', 'lightning', 'ray', 'mlflow', 'transformers', 'PySide6') "
            "if m in sys.modules]; print(heavy); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)

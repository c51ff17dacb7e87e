"""The system libraries Qt's xcb platform (a real desktop window) needs are installed, and
resources/install.sh names every one of them."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def _qt_dir() -> Path:
    import PySide6

    return Path(PySide6.__file__).resolve().parent / "Qt"


def _xcb_binaries() -> list[Path]:
    qt = _qt_dir()
    plugin = qt / "plugins" / "platforms" / "libqxcb.so"
    if not plugin.is_file():
        pytest.skip("this PySide6 build has no xcb platform plugin")
    if shutil.which("ldd") is None:
        pytest.skip("ldd is not available")
    return [plugin, *sorted((qt / "lib").glob("libQt6XcbQpa.so*"))[:1]]


def _ldd(path: Path) -> str:
    return subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout


def _install_packages() -> set[str]:
    text = (ROOT / "resources" / "install.sh").read_text()
    block = re.search(r'^packages="([^"]*)"', text, re.M).group(1)
    return {name for choice in block.split() for name in choice.split("|")}


def test_xcb_platform_plugin_finds_every_library():
    missing = [
        f"{path.name}: {line.strip()}"
        for path in _xcb_binaries()
        for line in _ldd(path).splitlines()
        if "not found" in line
    ]
    assert not missing, "missing system libraries (run resources/install.sh):\n" + "\n".join(missing)


def test_install_script_names_the_package_of_every_xcb_library():
    if shutil.which("dpkg") is None:
        pytest.skip("not a Debian-based system")
    packages = _install_packages()
    libs = {
        m.group(1)
        for path in _xcb_binaries()
        for m in re.finditer(r"=> (/\S+)", _ldd(path))
        if re.search(r"lib(xcb|xkbcommon|X11|EGL|GL|GLX|fontconfig|dbus)", m.group(1))
    }
    unnamed = []
    for lib in sorted(libs):
        owner = subprocess.run(["dpkg", "-S", str(Path(lib).resolve())], capture_output=True, text=True)
        if owner.returncode != 0:  # e.g. usr-merge paths: try the path as ldd printed it
            owner = subprocess.run(["dpkg", "-S", lib.replace("/lib/", "/usr/lib/", 1)], capture_output=True, text=True)
        if owner.returncode != 0:
            continue  # not from a package (built locally): nothing install.sh could install
        package = owner.stdout.split(":")[0]
        if package not in packages:
            unnamed.append(f"{lib} ({package})")
    assert not unnamed, "resources/install.sh does not install: " + ", ".join(unnamed)

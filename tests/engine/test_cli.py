"""The command line: demo data, demo, and the check verb's exit codes."""

import json
import subprocess
import sys
from pathlib import Path

from app.cli import main
from tests.conftest import REPO_ROOT

ROOT = REPO_ROOT


def test_demo_data_writes_a_clean_dataset(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--train", "6", "--val", "3"]) == 0
    assert (out / "annotations" / "instances_train.json").is_file()
    assert len(list((out / "train").glob("*.jpg"))) == 6
    assert main(["check", str(out)]) == 0
    assert "OK: no problems found" in capsys.readouterr().out


def test_demo_writes_into_the_workspace_and_reports(tmp_path, capsys):
    assert main(["demo", "--no-gui", "--workspace", str(tmp_path / "ws")]) == 0
    text = capsys.readouterr().out
    assert (tmp_path / "ws" / "datasets" / "shapes" / "annotations").is_dir()
    assert "train: 48 images" in text and "val: 16 images" in text
    assert "circle" in text


def test_check_json_output(sample_dataset, capsys):
    assert main(["check", str(sample_dataset), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and set(report["splits"]) == {"train", "val"}


def test_python_dash_m_engine_has_the_same_verbs(sample_dataset):
    done = subprocess.run(
        [sys.executable, "-m", "engine", "check", str(sample_dataset), "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout


def test_no_command_opens_the_app_and_gui_opens_a_folder(monkeypatch, tmp_path, capsys):
    import app.main

    calls = []
    monkeypatch.setattr(app.main, "run", lambda folder, workspace, **kw: calls.append((folder, workspace, kw)) or 0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIGHTBOX_WORKSPACE", raising=False)
    assert main([]) == 0
    assert main(["gui", str(tmp_path), "--workspace", str(tmp_path / "ws")]) == 0
    assert main(["demo", "--workspace", str(tmp_path / "ws")]) == 0
    assert main(["gui"]) == 0
    out = capsys.readouterr().out
    assert calls[0][0] is None and calls[0][2] == {"reopen_last": True}  # plain `lightbox` reopens the last one
    assert calls[1][:2] == (str(tmp_path), (tmp_path / "ws").resolve())
    assert calls[1][2] == {"reopen_last": False, "config": None}
    assert Path(calls[2][0]) == tmp_path / "ws" / "datasets" / "shapes"
    assert calls[3][2] == {"reopen_last": True, "config": None}
    # Every start says where the workspace is, so it is never created somewhere unnoticed.
    assert f"workspace: {(tmp_path / 'lightbox-workspace').resolve()}" in out
    assert f"workspace: {(tmp_path / 'ws').resolve()}" in out


def test_headless_engine_has_no_gui_verbs(capsys):
    from engine.cli import main as engine_main

    assert engine_main([]) == 2  # prints help instead of opening a window
    assert "gui" not in capsys.readouterr().out.split("COMMAND")[-1].split()


def test_a_process_that_loaded_ray_exits_with_its_code_after_its_threads_and_exit_handlers(tmp_path):
    """exit_process skips only the interpreter's teardown (slow once Ray is loaded)."""
    script = f"""
import atexit, sys, threading, time, types
from pathlib import Path
from engine.cli import exit_process
sys.modules.setdefault("ray", types.ModuleType("ray"))  # as after a search
out = Path({str(tmp_path)!r})
atexit.register(lambda: (out / "atexit").write_text("ran"))
def late():
    time.sleep(0.3)
    (out / "thread").write_text("finished")
threading.Thread(target=late).start()
print("last line", flush=False)
exit_process(7)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert done.returncode == 7, done.stderr
    assert done.stdout.strip() == "last line"  # flushed, though os._exit skips the usual flush
    assert (tmp_path / "atexit").read_text() == "ran" and (tmp_path / "thread").read_text() == "finished"
    plain = subprocess.run(
        [sys.executable, "-c", "from engine.cli import exit_process; exit_process(4)"], timeout=60, cwd=REPO_ROOT
    )
    assert plain.returncode == 4

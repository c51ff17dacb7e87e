"""The suite's Ray clusters leave the home folder of the person running the tests alone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from tests.conftest import (
    REAL_HOME,  # noqa: E402
    REPO_ROOT,
)

ROOT = REPO_ROOT


def _state(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.slow
def test_a_local_ray_started_as_the_tests_start_one_writes_no_token_into_the_real_home():
    real_ray = Path(REAL_HOME or "~").expanduser() / ".ray"
    before = _state(real_ray)
    # A local cluster without RAY_AUTH_MODE, in a process with this session's environment, as
    # the Ray Train, Tune and app tests start theirs (Ray 2.60 then makes a token for it).
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    subprocess.run(
        [sys.executable, "-c", "import ray; ray.init(num_cpus=1, include_dashboard=False); ray.shutdown()"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=240,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert _state(real_ray) == before
    home = Path(os.environ["HOME"])
    assert home != Path(REAL_HOME or "~").expanduser()
    assert (home / ".ray" / "auth_token").is_file()  # Ray did write one: into the session's own home

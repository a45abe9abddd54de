"""``built_once`` (tests/shared_build.py): a session sample is built once however many pytest-xdist workers share
it, and a failed build fails the tests of every worker with the build's error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipelines.lib.config import PROJECT_ROOT

# Four tests that each need the shared build, in a session of their own (two workers, `--dist load`: both
# workers take some). The build counts itself in a file outside the session's temporary directories.
SESSION = """
import os
import time
from pathlib import Path

import pytest

from tests.shared_build import built_once

COUNT = Path(os.environ["BUILDS_COUNTED_IN"])


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    def build(directory: Path) -> dict:
        with COUNT.open("a") as count:
            count.write(os.environ.get("PYTEST_XDIST_WORKER", "master") + "\\n")
        time.sleep(2)  # long enough for the other worker to wait on the lock
        if os.environ.get("BUILD_FAILS"):
            raise ValueError("the sample does not build: row 7, column quantity")
        directory.mkdir()
        (directory / "built.txt").write_text("built")
        return {"directory": directory}

    return built_once(tmp_path_factory, "shared", build)


@pytest.mark.parametrize("case", range(4))
def test_reads_the_shared_build(shared, case):
    assert (shared["directory"] / "built.txt").read_text() == "built"
    print("worker", os.environ.get("PYTEST_XDIST_WORKER"))
"""


def _session(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    tmp_path.mkdir()
    (tmp_path / "test_session.py").write_text(SESSION)
    count = tmp_path / "builds.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "load", "-p", "no:cacheprovider", "-rA"],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "BUILDS_COUNTED_IN": str(count),
            "PYTEST_ADDOPTS": "",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done, count.read_text().splitlines() if count.exists() else []


def test_two_workers_share_one_build(tmp_path: Path):
    done, builds = _session(tmp_path / "ok")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout
    assert {"worker gw0", "worker gw1"} <= set(done.stdout.splitlines())  # both workers read it
    assert len(builds) == 1 and builds[0] in ("gw0", "gw1")  # ... and one of them built it


def test_a_failed_build_fails_every_workers_tests_with_its_error(tmp_path: Path):
    done, builds = _session(tmp_path / "failing", BUILD_FAILS="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 errors" in done.stdout, done.stdout
    assert len(builds) == 1  # the worker that waited did not build again
    # The builder's tests fail with its exception, the other worker's with the same error and traceback.
    assert done.stdout.count("ValueError: the sample does not build: row 7, column quantity") >= 4, (
        done.stdout
    )
    assert "SharedBuildError: the session's 'shared' build failed in another worker" in done.stdout

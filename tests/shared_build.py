"""A session fixture's build done once for all the pytest-xdist workers of a session (tests/conftest.py)."""

from __future__ import annotations

import os
import pickle
import shutil
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from filelock import FileLock

Built = TypeVar("Built")


class SharedBuildError(Exception):
    """A session's shared build failed in another pytest-xdist worker; the message carries its traceback."""


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Built]) -> Built:
    """``build(directory)``, run once for the whole session however many pytest-xdist workers run it (`make
    test` runs two): the first worker to take the file lock builds, the others wait on it and read what it
    returned (pickled), or fail with the error it failed with, as pytest-xdist documents for session fixtures.
    Without workers, the one process builds. ``directory`` does not exist yet; ``build`` creates it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # each worker's basetemp is a folder of the session's one
    directory, outcome = root / name, root / f"{name}.pickle"
    with FileLock(root / f"{name}.lock"):
        if outcome.exists():
            built, value = pickle.loads(outcome.read_bytes())
            if not built:
                raise SharedBuildError(f"the session's {name!r} build failed in another worker:\n{value}")
            return value
        # A worker killed while building leaves a partial directory and no outcome: build afresh.
        shutil.rmtree(directory, ignore_errors=True)
        try:
            value = build(directory)
        except BaseException as exc:
            outcome.write_bytes(pickle.dumps((False, "".join(traceback.format_exception(exc)))))
            raise
        outcome.write_bytes(pickle.dumps((True, value)))
        return value

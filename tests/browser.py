"""A real headless browser for tests: Debian's chromium, driven from the command line with the stdlib only.

:func:`ensure_chromium` installs the ``chromium`` package with apt when it is missing (CI is a fresh machine
and runs as root). :func:`render` opens a local HTML file once with ``--dump-dom`` (which runs the page's
scripts) and console logging to stderr, and returns the DOM after scripts ran and every console message
(uncaught exceptions included) the page produced. :func:`screenshot` takes a PNG of a page.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
)
TIMEOUT = 60  # seconds for one browser run; a healthy one takes a second or two
# With --enable-logging=stderr chromium logs every console message of a page, whatever its level, as
# ``[...:INFO:CONSOLE:line] "message", source: url (line)`` (older builds: ``CONSOLE(line)]``); uncaught
# exceptions and rejected promises appear the same way as "Uncaught ...". Failed resource loads do not.
CONSOLE_LINE = re.compile(r":CONSOLE[:(]?\d*\)?\]\s*(?P<message>.*)")


@dataclass(frozen=True)
class Rendered:
    """A page after the browser loaded it: the serialised DOM and every console message it produced."""

    dom: str
    console: list[str]


def ensure_chromium() -> str:
    """The chromium executable, installed with apt first when missing; raises with apt's output on failure."""
    found = shutil.which(CHROMIUM)
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", CHROMIUM]):
        done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
    found = shutil.which(CHROMIUM)
    if not found:
        raise RuntimeError("apt-get installed chromium but no chromium executable is on PATH")
    return found


def _run(executable: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """One headless chromium run on ``page`` with a fresh, throw-away profile; raises with its log."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [executable, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}:\n{done.stderr[-4000:]}")
    return done


def console_messages(stderr: str) -> list[str]:
    """The console messages (uncaught exceptions included) in chromium's stderr log, in order.

    The log does not tell a message's level, so a page that must raise no console error is held to
    logging nothing at all.
    """
    return [match["message"] for match in map(CONSOLE_LINE.search, stderr.splitlines()) if match]


def render(executable: str, page: Path) -> Rendered:
    """Load ``page``, run its scripts and return the resulting DOM with the console messages it logged."""
    done = _run(executable, page, "--dump-dom", "--enable-logging=stderr", "--v=0")
    return Rendered(dom=done.stdout, console=console_messages(done.stderr))


def screenshot(executable: str, page: Path, png: Path, width: int = 1400, height: int = 3000) -> Path:
    """A PNG screenshot of ``page`` at the given window size."""
    _run(executable, page, f"--screenshot={png}", f"--window-size={width},{height}")
    return png

"""A real headless browser for tests: the system's chromium, driven by Playwright for Python.

Playwright's wheel carries its own driver; the browser is Debian's ``/usr/bin/chromium`` (never ``playwright
install``, which downloads one; :func:`ensure_chromium` installs Debian's package when it is missing).
:func:`open_page` loads a local page in a fresh profile with the network cut off: every request that is not
for a ``file:`` URL is aborted and recorded, and every console error and uncaught exception is collected, so a
test can assert that the page needed nothing from outside and logged no error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    """The system's chromium, or None when it is not installed."""
    for path in CHROMIUM_PATHS:
        if Path(path).exists():
            return path
    return shutil.which("chromium")


def ensure_chromium() -> str:
    """The system's chromium, installed with apt first when missing (CI is a fresh machine and runs as root);
    raises with apt's output when that fails, so that the browser tests fail rather than skip."""
    found = chromium_executable()
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
    found = chromium_executable()
    if not found:
        raise RuntimeError("apt-get installed chromium but no chromium executable was found")
    return found


@dataclass
class Session:
    """A page in a browser with the network cut off, and what it logged and tried to fetch."""

    page: Page
    context: BrowserContext
    errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


@contextmanager
def open_page(
    html: Path, width: int = 1400, height: int = 1000, ready: str = "body[data-ready=true]"
) -> Iterator[Session]:
    """``html`` loaded offline in a fresh chromium profile, once ``ready`` (a CSS selector) matches."""
    executable = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport={"width": width, "height": height},
            offline=True,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            session = Session(page, context)

            def route(request_route):
                url = request_route.request.url
                if url.startswith("file:"):
                    request_route.continue_()
                else:
                    session.blocked.append(url)
                    request_route.abort()

            context.route("**/*", route)
            page.on(
                "console", lambda message: message.type == "error" and session.errors.append(message.text)
            )
            page.on("pageerror", lambda error: session.errors.append(f"uncaught: {error}"))
            page.goto(Path(html).resolve().as_uri())
            if ready:
                page.wait_for_selector(ready, state="attached", timeout=60_000)
            yield session
        finally:
            context.close()

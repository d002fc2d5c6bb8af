"""Headless Chromium (Debian's binary, driven by Playwright) against a real wp-admin.

`stack` is WordPress with the bridge and the emulator, the partner simulator
and a running `formrelay run`; `admin` is a browser page logged in to wp-admin
as the site's administrator; `shot(name)` saves a screenshot under
artifacts/browser/ (kept after the run, for people to look at).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.wordpress.stack import Stack, open_stack

CHROMIUM = os.environ.get("FORMRELAY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` (or FORMRELAY_WITH_BROWSER=1"
                    " make bootstrap) installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with open_stack(tmp_path_factory.mktemp("sidecar")) as running:
        running.start()
        yield running


@pytest.fixture
def admin(browser: Any, stack: Stack) -> Iterator[Any]:
    """A page logged in to wp-admin; any alert() an injected script manages to run fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)  # a deadline, generous for a busy machine
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    page.on("dialog", on_dialog)
    # Straight to FormRelay: WordPress' own Dashboard asks api.wordpress.org for browser and
    # PHP checks while it renders, which can take many seconds on a machine with no network.
    page.goto(f"{stack.wp.url}/wp-login.php?redirect_to="
              + quote(f"{stack.wp.url}/wp-admin/admin.php?page=formrelay", safe=""))
    page.fill("#user_login", stack.wp.admin_user)
    page.fill("#user_pass", stack.wp.admin_password)
    page.click("#wp-submit")
    page.wait_for_url("**/wp-admin/admin.php?page=formrelay*")
    page.dialogs = dialogs  # the test decides which (confirm) dialogs were expected
    yield page
    context.close()
    assert not [d for d in dialogs if d.startswith("alert")], dialogs


@pytest.fixture
def shot(admin: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = request.node.name.removeprefix("test_")[:40]

    def save(name: str) -> Path:
        path = ARTIFACTS / f"{prefix}-{name}.png"
        admin.screenshot(path=str(path), full_page=True)
        return path

    return save

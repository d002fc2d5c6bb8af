"""FormRelay's notices on an ordinary wp-admin screen (Posts), in headless Chromium.

Real parts: WordPress on PHP 8.2 with the bridge, the pause row and incident rows in
MariaDB as the sidecar writes them, the real sidecar (`formrelay web`) rendering the
failed jobs list the notice links to. An admin who never opened the FormRelay page
sees the 401 pause and the failed jobs; Dismiss makes the pause notice go for good,
following the link counts as looking; an editor sees nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest

from devstack.wordpress import LocalWordPress
from tests.browser.conftest import ARTIFACTS
from tests.wordpress import ops_fixtures as ops
from tests.wordpress.dashboard_fixtures import (
    EDITOR,
    EDITOR_PASSWORD,
    dashboard_site,
    serving_sidecar,
)

pytestmark = [pytest.mark.browser, pytest.mark.wordpress, pytest.mark.db, pytest.mark.slow]

__all__ = ["dashboard_site"]  # a fixture, used by name


@pytest.fixture(scope="module")
def site(dashboard_site, tmp_path_factory) -> Iterator[LocalWordPress]:
    wp = dashboard_site.wp
    try:
        with serving_sidecar(wp, tmp_path_factory.mktemp("sidecar")):
            yield wp
    finally:
        ops.reset(wp)


def logged_in(browser: Any, wp: LocalWordPress, user: str, password: str) -> Any:
    """A page logged in as ``user`` and on the Posts screen (not FormRelay: that is looking)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)  # a deadline, generous for a busy machine
    posts = f"{wp.url}/wp-admin/edit.php"
    page.goto(f"{wp.url}/wp-login.php?redirect_to=" + quote(posts, safe=""))
    page.fill("#user_login", user)
    page.fill("#user_pass", password)
    page.click("#wp-submit")
    page.wait_for_url("**/wp-admin/edit.php")
    return page


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    prefix = request.node.name.removeprefix("test_")[:40]

    def save(page: Any, name: str) -> Path:
        path = ARTIFACTS / f"{prefix}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def test_an_admin_sees_the_pause_and_the_failures_on_the_posts_screen(browser, site, shot):
    ops.reset(site)
    ops.pause(site, "HTTP 401 auth: token refused", sticky=True)
    incident = ops.open_incident(site, "paused", "delivery paused: needs a person", "critical")
    ops.failed_jobs(site, 2, "UTC_TIMESTAMP(3) - INTERVAL 1 HOUR")
    page = logged_in(browser, site, site.admin_user, site.admin_password)
    try:
        paused = page.locator(".formrelay-ops-paused")
        failed = page.locator(".formrelay-ops-failed")
        assert "needs a person" in paused.inner_text()
        assert "Fix the partner token" in paused.inner_text()
        assert "2 submissions could not be delivered" in failed.inner_text()
        assert page.locator("h1").first.inner_text().startswith("Posts")
        shot(page, "1-notices")

        paused.locator("button.formrelay-dismiss-button").click()
        page.wait_for_url("**/wp-admin/edit.php")
        assert page.locator(".formrelay-ops-paused").count() == 0
        page.reload()
        assert page.locator(".formrelay-ops-paused").count() == 0  # stays gone
        assert page.locator(".formrelay-ops-failed").count() == 1  # only that one went
        assert ops.dismissed(site, site.admin_user) == [incident]
        shot(page, "2-pause-dismissed")

        page.click("a.formrelay-failed-link")
        page.wait_for_url("**page=formrelay**")
        query = parse_qs(urlparse(page.url).query)
        assert query == {"page": ["formrelay"], "view": ["jobs"], "status": ["failed"]}
        page.locator("tr.formrelay-job").first.wait_for()
        assert page.locator("tr.formrelay-job").count() == 2  # the sidecar's failed list
        shot(page, "3-failed-list")

        page.goto(f"{site.url}/wp-admin/edit.php")  # looked: the failed notice is gone too
        assert page.locator(".formrelay-ops-notice").count() == 0
        shot(page, "4-all-seen")
    finally:
        page.context.close()


def test_an_editor_sees_no_formrelay_notice(browser, site, shot):
    ops.reset(site)
    ops.pause(site, "HTTP 401 auth: token refused", sticky=True)
    ops.failed_jobs(site, 2, "UTC_TIMESTAMP(3)")
    page = logged_in(browser, site, EDITOR, EDITOR_PASSWORD)
    try:
        assert page.locator("h1").first.inner_text().startswith("Posts")
        assert page.locator(".formrelay-ops-notice").count() == 0
        assert "FormRelay" not in page.locator("#wpbody-content").inner_text()
        shot(page, "1-editor")
    finally:
        page.context.close()

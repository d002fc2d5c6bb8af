"""Who may use the dashboard: the formrelay_manage capability, the REST nonce, app passwords.

Every route of docs/dashboard.md is tried over real HTTP, pretty (/wp-json/) and
plain (?rest_route=) alike, by an anonymous visitor, an editor (cookie and
application password) and an admin; a refused request never reaches the sidecar.
"""

from __future__ import annotations

import json

import pytest
import requests

from tests.wordpress.bridge_fixtures import login
from tests.wordpress.dashboard_fixtures import (
    EDITOR,
    EDITOR_PASSWORD,
    ROUTES,
    AdminSidecar,
    Rest,
    admin_sidecar,
    assert_signed,
    cookie_session,
    dashboard_site,
    set_role_cap,
)

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

__all__ = ["admin_sidecar", "dashboard_site"]  # fixtures, used by name

PAGE = "/wp-admin/admin.php?page=formrelay"


def call(session: requests.Session | None, method: str, url: str, *,
         nonce: str | None = None, auth: tuple[str, str] | None = None) -> requests.Response:
    headers = {"X-WP-Nonce": nonce} if nonce else {}
    body = {"ids": [7]} if method == "POST" else None
    return (session or requests).request(method, url, headers=headers, auth=auth, json=body,
                                         allow_redirects=False, timeout=30)


@pytest.fixture(scope="module")
def editor(dashboard_site):
    return cookie_session(dashboard_site.wp, EDITOR, EDITOR_PASSWORD)


@pytest.fixture(scope="module")
def admin(dashboard_site):
    wp = dashboard_site.wp
    return cookie_session(wp, wp.admin_user, wp.admin_password)


@pytest.mark.parametrize("plain", [False, True], ids=["pretty", "plain"])
def test_anonymous_and_editor_are_refused_on_every_route(dashboard_site,
                                                         admin_sidecar: AdminSidecar, editor,
                                                         plain):
    rest = Rest(dashboard_site.url, plain)
    session, nonce = editor
    for method, route in ROUTES:
        url = rest.url(route)
        anonymous = call(None, method, url)
        assert anonymous.status_code == 401, (method, route, anonymous.text[:300])
        assert anonymous.json()["code"] == "rest_forbidden"
        by_cookie = call(session, method, url, nonce=nonce)
        assert by_cookie.status_code == 403, (method, route, by_cookie.text[:300])
        assert by_cookie.json()["code"] == "rest_forbidden"
        by_app = call(None, method, url, auth=(EDITOR, dashboard_site.editor_app_password))
        assert by_app.status_code == 403, (method, route, by_app.text[:300])
    assert admin_sidecar.take() == []


def test_the_editor_cannot_open_the_page_and_has_no_menu(dashboard_site, editor):
    session, _ = editor
    resp = session.get(dashboard_site.url + PAGE, timeout=30)
    assert resp.status_code == 403
    assert "Sorry, you are not allowed to access this page." in resp.text
    assert "formrelay-dashboard" not in resp.text
    home = session.get(f"{dashboard_site.url}/wp-admin/", timeout=30)
    assert home.status_code == 200 and "page=formrelay" not in home.text


def test_an_anonymous_visitor_is_sent_to_the_login_page(dashboard_site):
    resp = requests.get(dashboard_site.url + PAGE, allow_redirects=False, timeout=30)
    assert resp.status_code == 302
    assert "wp-login.php" in resp.headers["location"]


def test_the_admin_has_the_menu_and_the_page(dashboard_site, admin_sidecar, admin):
    session, _ = admin
    home = session.get(f"{dashboard_site.url}/wp-admin/", timeout=30)
    assert "href='admin.php?page=formrelay'" in home.text  # the top-level menu
    page = session.get(dashboard_site.url + PAGE, timeout=30)
    assert page.status_code == 200
    assert '<div class="wrap formrelay-dashboard">' in page.text


@pytest.mark.parametrize("plain", [False, True], ids=["pretty", "plain"])
def test_application_passwords_work_for_the_admin(dashboard_site, admin_sidecar, plain):
    wp = dashboard_site.wp
    rest = Rest(dashboard_site.url, plain)
    auth = (wp.admin_user, dashboard_site.admin_app_password)
    got = requests.get(rest.url("stats"), auth=auth, timeout=30)
    assert got.status_code == 200, got.text[:500]
    assert got.json() == {"echo": {"method": "GET", "target": "/admin/v1/stats"}}
    # A change needs no nonce with an application password.
    posted = requests.post(rest.url("jobs/12/retry"), auth=auth, timeout=30)
    assert posted.status_code == 200, posted.text[:500]
    sent = admin_sidecar.take()
    assert [(r.method, r.target) for r in sent] == [
        ("GET", "/admin/v1/stats"), ("POST", "/admin/v1/jobs/12/retry")]
    for req in sent:
        assert_signed(req, wp.admin_user)


@pytest.mark.parametrize("plain", [False, True], ids=["pretty", "plain"])
def test_a_change_with_cookies_needs_the_rest_nonce(dashboard_site, admin_sidecar, admin, plain):
    session, nonce = admin
    rest = Rest(dashboard_site.url, plain)
    for method, route in ROUTES:
        if method != "POST":
            continue
        url = rest.url(route)
        missing = call(session, method, url)
        assert missing.status_code == 401, (route, missing.text[:300])
        wrong = call(session, method, url, nonce="0123456789")
        assert wrong.status_code == 403, (route, wrong.text[:300])
        assert wrong.json()["code"] == "rest_cookie_invalid_nonce"
    assert admin_sidecar.take() == []  # nothing was asked of the sidecar: nothing changed
    # The same request with the nonce goes through (the refusals were about the nonce).
    good = call(session, "POST", rest.url("jobs/7/cancel"), nonce=nonce)
    assert good.status_code == 200, good.text[:300]
    (sent,) = admin_sidecar.take()
    assert (sent.method, sent.target) == ("POST", "/admin/v1/jobs/7/cancel")


def test_the_nonce_of_the_page_works_for_its_script(dashboard_site, admin_sidecar, admin):
    session, _ = admin
    page = session.get(dashboard_site.url + PAGE, timeout=30).text
    config = page.split("window.formrelayDashboard = ", 1)[1].split(";\n", 1)[0]
    data = json.loads(config)
    assert data["root"] == f"{dashboard_site.url}/wp-json/formrelay/v1/"
    resp = session.post(data["root"] + "resume", headers={"X-WP-Nonce": data["nonce"]},
                        json={}, timeout=30)
    assert resp.status_code == 200, resp.text[:300]


def test_a_role_granted_the_capability_may_use_the_dashboard(dashboard_site, admin_sidecar):
    wp = dashboard_site.wp
    set_role_cap(wp, "editor", "formrelay_manage", True)
    try:
        session, nonce = cookie_session(wp, EDITOR, EDITOR_PASSWORD)
        assert call(session, "GET", Rest(wp.url).url("stats"), nonce=nonce).status_code == 200
        assert session.get(wp.url + PAGE, timeout=30).status_code == 200
        # Still not the settings page: that stays manage_options.
        settings = session.get(f"{wp.url}/wp-admin/options-general.php?page=formrelay-bridge",
                               timeout=30)
        assert settings.status_code == 403
    finally:
        set_role_cap(wp, "editor", "formrelay_manage", False)
    (sent,) = admin_sidecar.take()[:1]
    assert_signed(sent, EDITOR)


def test_the_capability_follows_manage_options(dashboard_site):
    out = dashboard_site.wp.php(
        """
        $admin  = get_user_by( 'login', $snippet_args[0] );
        $editor = get_user_by( 'login', $snippet_args[1] );
        echo wp_json_encode( array(
            user_can( $admin, 'formrelay_manage' ), user_can( $editor, 'formrelay_manage' ),
        ) );
        """,
        dashboard_site.wp.admin_user,
        EDITOR,
    )
    assert out == "[true,false]"


def test_logged_out_cookies_are_anonymous(dashboard_site, admin_sidecar):
    wp = dashboard_site.wp
    session = login(wp, wp.admin_user, wp.admin_password)
    resp = session.get(Rest(wp.url).url("stats"), timeout=30)  # cookies, but no nonce
    assert resp.status_code == 401
    assert admin_sidecar.take() == []

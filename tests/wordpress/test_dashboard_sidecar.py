"""The bridge against the real sidecar: `formrelay web` from the venv, on the site's database,
with the secret the plugin is configured with (quotes, backslash and all).

The admin's application password reaches GET /admin/v1/stats through the plugin, the
page prints the sidecar's overview, and stopping the sidecar turns both into the
"unreachable" answers with the heartbeat and the waiting count.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import requests

from tests.wordpress.bridge_fixtures import login
from tests.wordpress.dashboard_fixtures import (
    EDITOR,
    NO_ADMIN_API,
    RealSidecar,
    Rest,
    dashboard_site,
    last_seen,
    seed_queue,
    serving_sidecar,
    sidecar_has_admin_api,
)

pytestmark = [
    pytest.mark.wordpress, pytest.mark.db, pytest.mark.slow,
    pytest.mark.skipif(not sidecar_has_admin_api(), reason=NO_ADMIN_API),
]

__all__ = ["dashboard_site"]  # a fixture, used by name


@pytest.fixture(scope="module")
def sidecar(dashboard_site, tmp_path_factory) -> Iterator[RealSidecar]:
    with serving_sidecar(dashboard_site.wp, tmp_path_factory.mktemp("sidecar")) as running:
        yield running


def admin_auth(site) -> tuple[str, str]:
    return site.wp.admin_user, site.admin_app_password


@pytest.mark.parametrize("plain", [False, True], ids=["pretty", "plain"])
def test_the_admins_application_password_gets_the_stats(dashboard_site, sidecar, plain):
    seed_queue(dashboard_site.wp, heartbeat_minutes_ago=None, waiting=3, done=2)
    resp = requests.get(Rest(dashboard_site.url, plain).url("stats"),
                        auth=admin_auth(dashboard_site), timeout=30)
    assert resp.status_code == 200, resp.text[:1000]
    stats = resp.json()
    assert stats["waiting"] == 3
    assert stats["counts"]["completed"] == 1 and stats["counts"]["failed"] == 1
    assert len(stats["hourly"]) == 24 and "pause" in stats and "workers" in stats


def test_the_editors_application_password_is_refused_before_the_sidecar(dashboard_site,
                                                                        sidecar):
    resp = requests.get(Rest(dashboard_site.url).url("stats"),
                        auth=(EDITOR, dashboard_site.editor_app_password), timeout=30)
    assert resp.status_code == 403


def test_the_sidecar_refuses_what_the_plugin_did_not_sign(sidecar):
    resp = requests.get(f"{sidecar.url}/admin/v1/stats", timeout=10)
    assert resp.status_code == 401


def test_an_action_names_the_acting_user_in_the_log(dashboard_site, sidecar):
    wp = dashboard_site.wp
    seed_queue(wp, heartbeat_minutes_ago=None, waiting=0, done=2)  # completed, failed
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT id FROM {wp.table_prefix}formrelay_jobs WHERE status = 'failed'")
        (job_id,) = cur.fetchone()
    resp = requests.post(Rest(wp.url).url(f"jobs/{job_id}/cancel"), auth=admin_auth(
        dashboard_site), timeout=30)
    assert resp.status_code == 409, resp.text  # a failed job cannot be cancelled
    resp = requests.post(Rest(wp.url, plain=True).url(f"jobs/{job_id}/retry"),
                         auth=admin_auth(dashboard_site), timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["job"]["id"] == job_id
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"SELECT actor FROM {wp.table_prefix}formrelay_log WHERE job_id = %s"
                    " ORDER BY id", (job_id,))
        actors = [row[0] for row in cur.fetchall()]
    assert actors and actors[-1] == wp.admin_user


def test_the_page_prints_the_sidecars_overview(dashboard_site, sidecar):
    wp = dashboard_site.wp
    session = login(wp, wp.admin_user, wp.admin_password)
    page = session.get(f"{wp.url}/wp-admin/admin.php?page=formrelay", timeout=30)
    assert page.status_code == 200
    assert 'data-formrelay-view="overview"' in page.text
    assert 'data-formrelay-refresh="overview"' in page.text
    assert "FormRelay sidecar unreachable" not in page.text
    assert "<svg" in page.text  # the hourly chart came through wp_kses


def test_two_identical_clicks_in_one_second_are_both_accepted(dashboard_site, sidecar):
    """The plugin's own client sends the same POST twice within one second (issue 11, item 4):
    each request has its own nonce, so the sidecar answers both instead of refusing the
    second as a replay. Pairs are sent until one falls inside one second (a busy machine may
    straddle a second boundary), without any sleep."""
    wp = dashboard_site.wp
    out = wp.php(
        """
        for ( $i = 0; $i < 20; $i++ ) {
            $second = time();
            $first  = FormRelay_Sidecar_Client::request( 'POST', 'resume', array(), '{}' );
            $again  = FormRelay_Sidecar_Client::request( 'POST', 'resume', array(), '{}' );
            if ( time() === $second ) {
                break;
            }
        }
        echo wp_json_encode( array( 'same_second' => time() === $second,
            'answers' => array( $first, $again ) ) );
        """,
        user=wp.admin_user,
    )
    data = json.loads(out)
    assert data["same_second"] is True
    for answer in data["answers"]:
        assert answer["status"] == 200, answer
        assert json.loads(answer["body"]) == {"resumed": False}


def test_with_the_sidecar_stopped_the_page_and_the_routes_say_so(dashboard_site, sidecar):
    wp = dashboard_site.wp
    seed_queue(wp, heartbeat_minutes_ago=3, waiting=4)
    heartbeat = last_seen(wp)
    sidecar.stop()
    session = login(wp, wp.admin_user, wp.admin_password)
    page = session.get(f"{wp.url}/wp-admin/admin.php?page=formrelay", timeout=30)
    assert page.status_code == 200
    text = re.sub(r"<[^>]+>", "", page.text)
    assert "FormRelay sidecar unreachable" in text
    assert f"Last worker heartbeat: {heartbeat[:19].replace('T', ' ')} UTC (3 mins ago)" in text
    assert "Submissions waiting: 4." in text
    resp = requests.get(Rest(wp.url).url("stats"), auth=admin_auth(dashboard_site), timeout=30)
    assert resp.status_code == 503
    body = resp.json()
    assert body["code"] == "formrelay_unreachable"
    assert body["message"] == "FormRelay sidecar unreachable"
    assert (body["data"]["status"], body["data"]["last_heartbeat"], body["data"]["waiting"]) \
        == (503, heartbeat, 4)

"""A form's partner (issue 15), end to end in WordPress: the settings page offers the
partners the sidecar published (formrelay_meta `partners`), saved through options.php
like a browser; a submission through the WPForms emulator becomes a job row carrying
the form's partner.

No sidecar runs here: the `partners` row is written as `formrelay web`/`worker` write
it (sidecar/cli.py publish_partners), and capture needs no sidecar.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from devstack import wpforms
from devstack.wordpress import LocalWordPress
from tests.wordpress.bridge_fixtures import (
    jobs,
    login,
    stored_settings,
    update_settings,
)
from tests.wordpress.conftest import BRIDGE_SLUG, BRIDGE_SOURCE, reset_bridge, running_site
from tests.wordpress.test_bridge_settings import field_name, form_post, get_page

pytestmark = [pytest.mark.wordpress, pytest.mark.db]

PARTNERS = [{"name": "intake", "profile": "default"}, {"name": "ehr", "profile": "fhir-r4"}]


@pytest.fixture(scope="module")
def partner_site(request: pytest.FixtureRequest) -> Iterator[LocalWordPress]:
    """The bridge and the WPForms emulator (Pro: entries stored), no FORMRELAY_* constants:
    no notify is attempted."""
    with running_site(request, constants={},
                      plugins=[(BRIDGE_SLUG, BRIDGE_SOURCE), wpforms.plugin()]) as wp:
        yield wp


@pytest.fixture
def wp(partner_site: LocalWordPress) -> LocalWordPress:
    reset_bridge(partner_site)
    return partner_site


@pytest.fixture(scope="module")
def admin(partner_site):
    return login(partner_site, partner_site.admin_user, partner_site.admin_password)


@pytest.fixture(scope="module")
def forms(partner_site) -> tuple[int, int]:
    fields = [wpforms.name_field(1), wpforms.email_field(2)]
    return (wpforms.create_form(partner_site, "Intake", fields=fields),
            wpforms.create_form(partner_site, "Referral", fields=fields))


def set_partners(wp: LocalWordPress, value: str | None) -> None:
    """The `partners` row as the sidecar writes it (None: absent)."""
    with wp.db() as conn:
        cur = conn.cursor()
        cur.execute(f"DELETE FROM {wp.table_prefix}formrelay_meta WHERE name = 'partners'")
        if value is not None:
            cur.execute(f"INSERT INTO {wp.table_prefix}formrelay_meta (name, value, updated_at)"
                        " VALUES ('partners', %s, UTC_TIMESTAMP(3))", (value,))
        conn.commit()


def partner_select(page: str, form_id: int) -> list[tuple[str, str, bool]]:
    """The options of a form's partner select: (value, label, selected)."""
    name = html.escape(field_name(f"form_settings/{form_id}/partner"))
    match = re.search(rf'<select name="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S)
    assert match, f"no partner select for form {form_id}"
    return [(html.unescape(v), html.unescape(label), "selected" in attrs)
            for v, attrs, label in re.findall(
                r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', match.group(1))]


def shown(form_id: int, partner: str) -> dict[str, str]:
    """What the browser posts for the form's row as the page shows it."""
    return {f"form_settings/{form_id}/template": "", f"form_settings/{form_id}/priority": "10",
            f"form_settings/{form_id}/partner": partner}


def submit(wp: LocalWordPress, form_id: int, first: str) -> int:
    sent = wpforms.submit(wp.url, form_id, {"1": {"first": first, "last": "Reader"},
                                            "2": "reader@example.org"})
    assert sent.result == "complete" and sent.entry_id > 0
    return sent.entry_id


def job_of(wp: LocalWordPress, form_id: int, entry_id: int) -> dict[str, Any]:
    (job,) = [j for j in jobs(wp) if j["reference"] == f"wpforms:{form_id}:{entry_id}"]
    return job


def test_the_partner_saved_on_the_page_goes_with_the_forms_submissions(wp, admin, forms):
    intake, referral = forms
    set_partners(wp, json.dumps(PARTNERS))
    page = get_page(admin, wp)
    assert partner_select(page, intake) == [("", "Default (first partner)", True),
                                            ("intake", "intake", False),
                                            ("ehr", "ehr", False)]

    resp = form_post(admin, wp, page, {f"form_settings/{intake}/partner": "ehr",
                                       f"form_settings/{referral}/partner": ""})
    assert resp.status_code == 302 and "settings-updated=true" in resp.headers["location"]
    saved = stored_settings(wp)["form_settings"]
    assert saved[str(intake)]["partner"] == "ehr" and str(referral) not in saved
    assert ("ehr", "ehr", True) in partner_select(get_page(admin, wp), intake)
    with wp.db() as conn:  # published for the sidecar's own job creation (sweep, backfill)
        cur = conn.cursor()
        cur.execute(f"SELECT value FROM {wp.table_prefix}formrelay_meta"
                    " WHERE name = 'delivery_settings'")
        published = json.loads(cur.fetchone()[0])["form_settings"]
    assert published[str(intake)]["partner"] == "ehr"

    mine, theirs = submit(wp, intake, "Ann"), submit(wp, referral, "Bob")
    assert job_of(wp, intake, mine)["partner"] == "ehr"
    assert job_of(wp, referral, theirs)["partner"] == ""  # the default, named at the claim


def test_a_partner_no_longer_published_is_shown_and_kept_until_changed(wp, admin, forms):
    intake, _ = forms
    set_partners(wp, json.dumps(PARTNERS))
    update_settings(wp, form_settings={str(intake): {"template": "", "priority": 10,
                                                     "partner": "lab"}})
    page = get_page(admin, wp)
    assert partner_select(page, intake)[-1] == ("lab", "lab (not configured)", True)
    form_post(admin, wp, page, shown(intake, "lab"))  # saved as shown: kept
    assert stored_settings(wp)["form_settings"][str(intake)]["partner"] == "lab"
    entry = submit(wp, intake, "Cat")
    assert job_of(wp, intake, entry)["partner"] == "lab"  # the sidecar holds it, says why


@pytest.mark.parametrize("row", [
    None, "not json", "[]", '{"name": "ehr"}',
    json.dumps([{"name": "ehr"}, {"name": "<b>x</b>"}]),  # not a name: nothing offered
])
def test_without_a_readable_partners_row_a_note_and_the_stored_value_kept(wp, admin, forms,
                                                                         row):
    intake, _ = forms
    set_partners(wp, row)
    update_settings(wp, form_settings={str(intake): {"template": "", "priority": 10,
                                                     "partner": "ehr"}})
    page = get_page(admin, wp)
    name = html.escape(field_name(f"form_settings/{intake}/partner"))
    assert f'<select name="{name}"' not in page  # no choice, and no free text either
    assert re.search(rf'<input type="hidden" name="{re.escape(name)}" value="ehr" />', page)
    assert "The sidecar has not published its partners yet" in page
    assert "<b>x</b>" not in page
    form_post(admin, wp, page, shown(intake, "ehr"))  # what the browser posts
    assert stored_settings(wp)["form_settings"][str(intake)]["partner"] == "ehr"


def test_partner_names_in_the_page_are_escaped(wp, admin, forms):
    """Names are checked where they are read; a stored value that is not one is not kept."""
    intake, _ = forms
    set_partners(wp, json.dumps(PARTNERS))
    with wp.db() as conn:  # a damaged option, written around the sanitizer
        cur = conn.cursor()
        cur.execute(f"UPDATE {wp.table_prefix}options SET option_value = %s"
                    " WHERE option_name = 'formrelay_bridge_settings'",
                    (php_serialized_settings(intake, '"><script>alert(1)</script>'),))
        conn.commit()
    wp.php("wp_cache_flush();")
    page = get_page(admin, wp)
    assert "<script>alert(1)" not in page
    assert partner_select(page, intake)[0] == ("", "Default (first partner)", True)


def php_serialized_settings(form_id: int, partner: str) -> str:
    """The option as PHP serializes it, with a partner that is not a name."""
    one = (f'a:3:{{s:8:"template";s:0:"";s:8:"priority";i:10;'
           f's:7:"partner";s:{len(partner.encode())}:"{partner}";}}')
    return (f'a:3:{{s:11:"sidecar_url";s:0:"";s:5:"forms";s:3:"all";'
            f's:13:"form_settings";a:1:{{i:{form_id};{one}}}}}')

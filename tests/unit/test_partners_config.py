"""Partners by name (sidecar/partners.py): the flat single partner keeps working, the
TOML tables name several, and every mistake is one line that names the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sidecar import config, partners
from sidecar.errors import ConfigError
from sidecar.partner_profile import PARTNER_NAME

pytestmark = pytest.mark.unit

SECRET = "s3cret-value-0123456789abcdef"
BASE = {"WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_NAME": "wordpress",
        "FORMRELAY_SHARED_SECRET": SECRET}
TWO = """
[partners.intake]
url = "https://pm.example.org/api"
token_file = "{token}"
rps = 2

[partners.ehr]
url = "https://ehr.example.org/fhir"
profile = "fhir-r4"
auth = "smart-backend"
smart_client_id = "formrelay"
smart_token_url = "https://ehr.example.org/auth/token"
smart_private_key_file = "{key}"
"""


def env(tmp_path: Path, **more: str) -> dict[str, str]:
    return BASE | {"FORMRELAY_UPLOADS_DIR": str(tmp_path)} | more


def with_file(tmp_path: Path, text: str, **more: str) -> dict[str, str]:
    path = tmp_path / "formrelay.toml"
    path.write_text(text)
    return env(tmp_path, FORMRELAY_CONFIG=str(path), **more)


def problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.load("worker", environ)
    return caught.value.problems


def two_partners(tmp_path: Path) -> str:
    (tmp_path / "token").write_text(SECRET + "\n")
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    return TWO.format(token=tmp_path / "token", key=tmp_path / "key.pem")


def test_the_flat_settings_make_one_partner_named_default(tmp_path):
    cfg = config.load("worker", env(tmp_path, FORMRELAY_PARTNER_URL="https://p.example.org/api",
                                    FORMRELAY_PARTNER_TOKEN=SECRET,
                                    FORMRELAY_PARTNER_PROFILE="fhir-r4",
                                    FORMRELAY_PARTNER_RPS="3"))
    (only,) = cfg.partners
    assert (only.name, only.url, only.profile, only.token, only.rps) == (
        "default", "https://p.example.org/api", "fhir-r4", SECRET, 3.0)
    assert SECRET not in repr(cfg) and SECRET not in repr(only)


def test_tables_name_partners_in_file_order_with_the_flat_values_as_defaults(tmp_path):
    cfg = config.load("worker", with_file(tmp_path, two_partners(tmp_path),
                                          FORMRELAY_CONNECT_TIMEOUT="7"))
    intake, ehr = cfg.partners
    assert (intake.name, intake.profile, intake.auth, intake.token, intake.rps) == (
        "intake", "default", "bearer", SECRET, 2.0)
    assert (ehr.name, ehr.profile, ehr.auth, ehr.token, ehr.rps) == (
        "ehr", "fhir-r4", "smart-backend", "", 10.0)  # a token is never shared by default
    assert intake.connect_timeout == ehr.connect_timeout == 7.0
    assert partners.by_name(cfg.partners, "") is intake  # no partner recorded: the first
    assert partners.by_name(cfg.partners, "ehr") is ehr
    with pytest.raises(KeyError):
        partners.by_name(cfg.partners, "gone")
    assert SECRET not in repr(cfg)


def test_tables_and_a_flat_partner_url_are_refused_together(tmp_path):
    found = problems(with_file(tmp_path, two_partners(tmp_path),
                               FORMRELAY_PARTNER_URL="https://p.example.org/api"))
    assert len(found) == 1 and "keep one" in found[0]


@pytest.mark.parametrize(("table", "says"), [
    ('[partners.Bad_Name]\nurl = "https://a.example.org"', "lower-case letters"),
    ('[partners.a]\nurl = "https://a.example.org"\ncolour = "red"', "unknown key 'colour'"),
    ("[partners.a]\nrps = 1", "url is required"),
    ('[partners.a]\nurl = "http://a.example.org"', "https://"),
    ('[partners.a]\nurl = "https://a.example.org"\nprofile = "hl7v2"', "profile must be"),
    ('[partners.a]\nurl = "https://a.example.org"\nauth = "smart-backend"',
     "needs smart_client_id, smart_token_url, smart_private_key_file"),
    ('[partners.a]\nurl = "https://a.example.org"\ntoken = "x"\ntoken_file = "/x"',
     "token or token_file"),
    ("[partners]", "at least one"),
])
def test_each_mistake_in_a_table_is_one_line_naming_it(tmp_path, table, says):
    found = problems(with_file(tmp_path, table))
    assert len(found) == 1 and says in found[0], found
    assert "[partners" in found[0]


def test_a_token_file_that_cannot_be_read_is_named_not_quoted(tmp_path):
    found = problems(with_file(tmp_path, '[partners.a]\nurl = "https://a.example.org"\n'
                                         f'token_file = "{tmp_path / "absent"}"'))
    assert len(found) == 1 and "cannot read the file" in found[0]


def test_no_partner_configured_is_still_required_by_the_worker(tmp_path):
    found = problems(env(tmp_path))
    assert any("FORMRELAY_PARTNER_URL is required" in line for line in found)


def test_a_fhir_partner_is_probed_with_its_capability_statement_unless_told_otherwise(tmp_path):
    fhir = {"FORMRELAY_PARTNER_URL": "https://ehr.example.org/fhir",
            "FORMRELAY_PARTNER_PROFILE": "fhir-r4"}
    assert config.load("worker", env(tmp_path, **fhir)).partners[0].probe == ("GET", "/metadata")
    told = env(tmp_path, **fhir, FORMRELAY_PARTNER_PROBE="HEAD /fhir")
    assert config.load("worker", told).partners[0].probe == ("HEAD", "/fhir")
    cfg = config.load("worker", with_file(tmp_path, two_partners(tmp_path)))
    assert [p.probe for p in cfg.partners] == [("HEAD", "/"), ("GET", "/metadata")]


def test_the_plugin_checks_partner_names_with_the_same_pattern():
    """The plugin's copy (FormRelay_Settings::PARTNER_PATTERN) is the sidecar's rule,
    PHP's \\z being Python's \\Z: a drift would let the plugin store names no job may hold."""
    php = (Path(__file__).resolve().parents[2] / "wp_bridge_plugin" / "includes"
           / "class-formrelay-settings.php").read_text()
    found = re.search(r"const PARTNER_PATTERN\s*=\s*'/(.*)/';", php)
    assert found is not None
    assert found[1].replace("\\z", "\\Z") == PARTNER_NAME.pattern

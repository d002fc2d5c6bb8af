"""Configuration: environment, TOML file, one line per problem, no secret echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sidecar import config, config_parsers
from sidecar.errors import ConfigError

pytestmark = pytest.mark.unit

SECRET = "s3cret-value-that-must-not-leak"


def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_NAME": "wordpress",
        "WORDPRESS_DB_PASSWORD": SECRET, "FORMRELAY_PARTNER_URL": "https://partner.test/api/",
        "FORMRELAY_SHARED_SECRET": SECRET, "FORMRELAY_UPLOADS_DIR": str(tmp_path),
        "FORMRELAY_PARTNER_TOKEN": SECRET,
    }


def test_defaults_and_parsing(tmp_path):
    cfg = config.load("run", base_env(tmp_path))
    assert cfg.db_host == "127.0.0.1:3306"
    assert cfg.table_prefix == "wp_"
    assert cfg.partner_url == "https://partner.test/api"  # trailing slash dropped
    assert cfg.listen == "127.0.0.1:8787"
    assert cfg.redis_url == ""  # embedded queue
    assert cfg.uploads_dir == tmp_path.resolve()
    assert (cfg.workers, cfg.lease_seconds, cfg.max_attempts) == (4, 300, 10)


def test_every_problem_is_reported_at_once(tmp_path):
    env = {"FORMRELAY_SHARED_SECRET": "short", "FORMRELAY_LISTEN": "nowhere",
           "FORMRELAY_WORKERS": "many", "FORMRELAY_UPLOADS_DIR": str(tmp_path / "missing"),
           "FORMRELAY_REDIS_URL": "http://x", "WORDPRESS_TABLE_PREFIX": "wp-;"}
    with pytest.raises(ConfigError) as err:
        config.load("run", env)
    problems = err.value.problems
    assert any("WORDPRESS_DB_USER is required" in p for p in problems)
    assert any("WORDPRESS_DB_NAME is required" in p for p in problems)
    assert any("FORMRELAY_PARTNER_URL is required" in p for p in problems)
    assert any("FORMRELAY_SHARED_SECRET must be at least 16" in p for p in problems)
    assert any("FORMRELAY_LISTEN must be host:port" in p for p in problems)
    assert any("FORMRELAY_WORKERS must be a whole number" in p for p in problems)
    assert any("FORMRELAY_UPLOADS_DIR must be an existing directory" in p for p in problems)
    assert any("FORMRELAY_REDIS_URL must be a redis://" in p for p in problems)
    assert any("WORDPRESS_TABLE_PREFIX" in p for p in problems)
    assert len(problems) == 9


def test_each_command_needs_only_its_settings():
    cfg = config.load("migrate", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d"})
    assert cfg.partner_url == "" and cfg.uploads_dir is None
    with pytest.raises(ConfigError) as err:
        config.load("web", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d"})
    assert err.value.problems == [
        "FORMRELAY_SHARED_SECRET is required for `formrelay web` but is not set"]


def test_empty_value_means_unset():
    with pytest.raises(ConfigError, match="WORDPRESS_DB_NAME is required"):
        config.load("migrate", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": ""})
    cfg = config.load("migrate", {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d",
                                  "WORDPRESS_DB_HOST": ""})
    assert cfg.db_host == "127.0.0.1:3306"


def test_toml_file_with_environment_taking_precedence(tmp_path):
    path = tmp_path / "formrelay.toml"
    path.write_text('db_user = "fromfile"\ndb_name = "filedb"\nworkers = 7\n'
                    f'uploads_dir = "{tmp_path}"\n')
    cfg = config.load("migrate", {"FORMRELAY_CONFIG": str(path), "WORDPRESS_DB_NAME": "envdb"})
    assert (cfg.db_user, cfg.db_name, cfg.workers, cfg.uploads_dir) == (
        "fromfile", "envdb", 7, tmp_path.resolve())


def test_toml_problems_name_the_file(tmp_path):
    path = tmp_path / "formrelay.toml"
    path.write_text('db_user = "u"\ndb_name = "d"\nworkres = 3\nlease_seconds = 1\n')
    with pytest.raises(ConfigError) as err:
        config.load("migrate", {"FORMRELAY_CONFIG": str(path)})
    assert f"{path}: unknown setting 'workres'" in err.value.problems
    assert any(p.startswith(f"lease_seconds (in {path}) must be between") for p in
               err.value.problems)
    path.write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        config.load("migrate", {"FORMRELAY_CONFIG": str(path)})
    with pytest.raises(ConfigError, match="cannot read"):
        config.load("migrate", {"FORMRELAY_CONFIG": str(tmp_path / "absent.toml")})


def test_secrets_are_never_echoed(tmp_path):
    env = base_env(tmp_path) | {"FORMRELAY_REDIS_URL": f"ftp://user:{SECRET}@host"}
    with pytest.raises(ConfigError) as err:
        config.load("run", env)
    assert SECRET not in str(err.value)
    cfg = config.load("run", base_env(tmp_path))
    assert SECRET not in repr(cfg)
    assert "shared_secret='***'" in repr(cfg)


def test_env_vars_lists_every_setting():
    secrets = [s.env for s in config.SETTINGS if s.secret]
    assert set(config.ENV_VARS) == {"FORMRELAY_CONFIG", *(s.env for s in config.SETTINGS),
                                    *(f"{name}_FILE" for name in secrets)}
    assert {"WORDPRESS_DB_PASSWORD_FILE", "FORMRELAY_SHARED_SECRET_FILE",
            "FORMRELAY_PARTNER_TOKEN_FILE", "FORMRELAY_REDIS_URL_FILE",
            "FORMRELAY_SMTP_PASSWORD_FILE", "FORMRELAY_ALERT_WEBHOOK_SECRET_FILE",
            "FORMRELAY_ALERT_WEBHOOK_URL_FILE"} <= set(config.FILE_VARS)
    for name in ("WORDPRESS_DB_HOST", "WORDPRESS_DB_USER", "WORDPRESS_DB_PASSWORD",
                 "WORDPRESS_DB_NAME", "WORDPRESS_TABLE_PREFIX", "FORMRELAY_PARTNER_URL",
                 "FORMRELAY_PARTNER_TOKEN", "FORMRELAY_SHARED_SECRET", "FORMRELAY_REDIS_URL",
                 "FORMRELAY_UPLOADS_DIR", "FORMRELAY_LISTEN"):
        assert name in config.ENV_VARS  # the design brief's contract


def test_the_command_prints_one_line_per_problem_and_no_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FORMRELAY_SHARED_SECRET": SECRET[:5],
           "FORMRELAY_PARTNER_TOKEN": SECRET}
    proc = subprocess.run([sys.executable, "-m", "sidecar.cli", "run"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78  # EX_CONFIG: no restart policy should retry it
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 5, lines  # db user, db name, partner url, secret length, uploads dir
    assert all(line.startswith("formrelay run: ") for line in lines)
    assert "Traceback" not in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr and SECRET[:5] not in proc.stderr


def test_delivery_settings_defaults_and_parsing(tmp_path):
    cfg = config.load("run", base_env(tmp_path))
    assert (cfg.connect_timeout, cfg.read_timeout) == (5.0, 30.0)
    assert (cfg.record_path, cfg.document_path, cfg.id_field) == (
        "/patients", "/patients/{id}/documents", "id")
    assert (cfg.backoff_base, cfg.backoff_factor, cfg.backoff_cap) == (30.0, 2.0, 3600.0)
    assert (cfg.min_document_bytes, cfg.max_document_bytes) == (1024, 25 * 1024 * 1024)
    assert "application/pdf" in cfg.document_types and "text/html" not in cfg.document_types
    assert cfg.templates_dir is not None and (cfg.templates_dir / "payloads").is_dir()
    assert cfg.form_templates == {}
    cfg = config.load("run", base_env(tmp_path) | {
        "FORMRELAY_FORM_TEMPLATES": "12=intake.json.j2, 14=ref.json.j2",
        "FORMRELAY_PARTNER_AUTH": "header:X-Api-Key",
        "FORMRELAY_DOCUMENT_TYPES": "application/pdf"})
    assert cfg.form_templates == {12: "intake.json.j2", 14: "ref.json.j2"}
    assert cfg.partner_auth == "header:X-Api-Key"
    assert cfg.document_types == frozenset({"application/pdf"})


@pytest.mark.parametrize("name,value,problem", [
    ("FORMRELAY_DOCUMENT_PATH", "/patients/documents", "must contain {id}"),
    ("FORMRELAY_RECORD_PATH", "patients", "must be a path starting with /"),
    ("FORMRELAY_FORM_TEMPLATES", "12=../../etc/passwd", "form_id=template.json.j2 pairs"),
    ("FORMRELAY_FORM_TEMPLATES", "12=default.json/../x.j2", "form_id=template.json.j2 pairs"),
    ("FORMRELAY_FORM_TEMPLATES", "12=a.j2\nb.j2", "form_id=template.json.j2 pairs"),
    ("FORMRELAY_REDIS_URL", "redis://:pw@/0", "must name a host"),
    ("FORMRELAY_REDIS_URL", "redis://:pw@h:70000/0", "with a valid port"),
    ("FORMRELAY_REDIS_URL", "http://h:6379", "redis://, rediss:// or unix://"),
    ("FORMRELAY_PARTNER_AUTH", "basic", "bearer, none, header:<Header-Name> or smart-backend"),
    ("FORMRELAY_DOCUMENT_TYPES", "pdf", "comma-separated list of MIME types"),
    ("FORMRELAY_BACKOFF_FACTOR", "0.5", "must be between 1 and 10"),
    ("FORMRELAY_READ_TIMEOUT", "soon", "must be a number"),
    ("FORMRELAY_MIN_DOCUMENT_BYTES", "99999999999", "must not exceed"),
])
def test_delivery_settings_are_validated(tmp_path, name, value, problem):
    with pytest.raises(ConfigError) as err:
        config.load("run", base_env(tmp_path) | {name: value})
    assert len(err.value.problems) == 1 and problem in err.value.problems[0]


@pytest.mark.parametrize("url,shown", [
    ("redis://:s3cret-pw@redis:6379/0", "redis://redis:6379/0 (with password)"),
    ("redis://fr-user:s3cret-pw@redis:6379/2", "redis://redis:6379/2 (with password)"),
    ("rediss://fr-user:s3cret-pw@redis.example:6380", "rediss://redis.example:6380 (with"
     " password)"),
    ("unix://:s3cret-pw@/run/redis.sock?db=1", "unix:///run/redis.sock (with password)"),
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0 (no password)"),
])
def test_redis_urls_with_credentials_parse_and_show_none(tmp_path, url, shown):
    cfg = config.load("run", base_env(tmp_path) | {"FORMRELAY_REDIS_URL": url})
    assert cfg.redis_url == url and "s3cret" not in repr(cfg)
    assert config_parsers.redis_location(url) == shown


def test_a_bad_redis_url_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        config.load("run", base_env(tmp_path) | {"FORMRELAY_REDIS_URL": "redis://:s3cret@/x"})
    assert "s3cret" not in str(err.value.problems)


@pytest.mark.parametrize("url", ["http://partner.example/api", "http://10.0.0.5:8080/api",
                                 "http://partner-sim:8080/api",
                                 "http://user:pw-in-url@partner.example/api"])
def test_an_http_partner_url_off_loopback_is_refused_without_showing_it(tmp_path, url):
    with pytest.raises(ConfigError) as err:
        config.load("worker", {**base_env(tmp_path), "FORMRELAY_PARTNER_URL": url})
    assert err.value.problems == [
        "FORMRELAY_PARTNER_URL is http:// to a host that is not loopback: the partner token and"
        " the submissions would travel in clear; use https://, or set"
        " FORMRELAY_ALLOW_INSECURE_PARTNER=1 if that network is trusted"]
    assert "pw-in-url" not in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/api", "http://127.8.9.10/api",
                                 "http://localhost:8080/api", "http://[::1]:8080/api",
                                 "https://partner.example/api"])
def test_loopback_and_https_partner_urls_need_no_permission(tmp_path, url):
    assert config.load("worker", {**base_env(tmp_path), "FORMRELAY_PARTNER_URL": url})


def test_an_insecure_partner_url_is_allowed_when_said_so(tmp_path):
    cfg = config.load("worker", {**base_env(tmp_path), "FORMRELAY_ALLOW_INSECURE_PARTNER": "1",
                                 "FORMRELAY_PARTNER_URL": "http://partner-sim:8080/api"})
    assert cfg.allow_insecure_partner and cfg.partner_url == "http://partner-sim:8080/api"


def test_the_partner_deadline_defaults_to_120_s_and_is_bounded(tmp_path):
    assert config.load("worker", base_env(tmp_path)).partner_deadline == 120.0
    cfg = config.load("worker", {**base_env(tmp_path), "FORMRELAY_PARTNER_DEADLINE_SECONDS": "30"})
    assert cfg.partner_deadline == 30.0
    with pytest.raises(ConfigError) as err:
        config.load("worker", {**base_env(tmp_path), "FORMRELAY_PARTNER_DEADLINE_SECONDS": "0"})
    assert err.value.problems == ["FORMRELAY_PARTNER_DEADLINE_SECONDS must be between 1 and 3600"
                                  " (got '0')"]


# ---- secrets from files (Docker secrets, systemd credentials) ----------------------------

FILE_BASE = {"WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_NAME": "wp"}


def test_every_secret_can_come_from_a_file_without_its_trailing_newline(tmp_path):
    values = {"db_password": "db pass word", "shared_secret": "s" * 32,
              "partner_token": "tok-123", "smtp_password": "mail-pass",
              "alert_webhook_secret": "w" * 20}
    env = dict(FILE_BASE)
    for name, value in values.items():
        path = tmp_path / name
        path.write_text(value + "\n")
        env[f"{config.SETTINGS_BY_NAME[name].env}_FILE"] = str(path)
    env.update({"FORMRELAY_ALERT_WEBHOOK_URL": "https://hooks.example.org/x"})
    cfg = config.load("migrate", env)
    assert {name: getattr(cfg, name) for name in values} == values


def test_a_secret_file_in_the_toml_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("t" * 24)
    toml = tmp_path / "formrelay.toml"
    toml.write_text(f'shared_secret_file = "{secret}"\n')
    cfg = config.load("web", {**FILE_BASE, "FORMRELAY_CONFIG": str(toml)})
    assert cfg.shared_secret == "t" * 24


@pytest.mark.parametrize("case", ["missing", "empty", "both", "short"])
def test_a_secret_file_that_cannot_be_used_is_one_line_without_its_content(tmp_path, case):
    path = tmp_path / "secret"
    env = {**FILE_BASE, "FORMRELAY_SHARED_SECRET_FILE": str(path)}
    if case == "empty":
        path.write_text("\n")
    elif case == "both":
        path.write_text("x" * 20)
        env["FORMRELAY_SHARED_SECRET"] = "y" * 20
    elif case == "short":
        path.write_text("hidden-short")
    with pytest.raises(ConfigError) as caught:
        config.load("web", env)
    (line,) = caught.value.problems
    assert "FORMRELAY_SHARED_SECRET" in line and "hidden-short" not in line
    expected = {"missing": "cannot read the file: No such file or directory",
                "empty": "the file is empty", "both": "are both set: set only one",
                "short": "must be at least 16 characters"}[case]
    assert expected in line

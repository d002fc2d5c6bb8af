"""docker-compose.yml and the Dockerfile hold each deployment property of issue 13.

No Docker engine runs where the suite runs, so each property is read from the files
(tests/test_compose.py has the shared helpers and `docker-compose config`): a change
that drops one fails here, with the property in the message.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar import cli, config, config_parsers
from tests.test_compose import (
    COMPOSE,
    ROOT,
    SECRETS_DIR,
    SIDECAR_SERVICES,
    UPLOADS_IN_WP,
    dockerfile_instructions,
    env_of,
    formrelay_invocations,
    mounts_of,
    sample_value,
    secret_files,
)

pytestmark = pytest.mark.unit

LONG_RUNNING = ("db", "redis", "wordpress", "web", "worker")
ONE_SHOTS = ("uploads-init", "wp-install", "setup", "migrate")
# What each image's start-up needs back after cap_drop: [ALL] (the compose file says why).
CAPS_ALLOWED: dict[str, set[str]] = {
    "db": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"},
    "wordpress": {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "NET_BIND_SERVICE",
                  "KILL"},
    "uploads-init": {"CHOWN"},
}
WWW_DATA = "33:33"
# Exact tags: name:1.2.3 (WordPress 6.1+ / PHP 8.3+, MariaDB 10.11.x, Redis 7.x.y).
PINNED = {
    "db": re.compile(r"^mariadb:10\.11\.\d+$"),
    "redis": re.compile(r"^redis:7\.\d+\.\d+$"),
    "wordpress": re.compile(r"^wordpress:(?P<wp>\d+)\.(?P<minor>\d+)\.\d+-php8\.[3-9]-apache$"),
    "uploads-init": re.compile(r"^wordpress:\d+\.\d+\.\d+-php8\.[3-9]-apache$"),
    "wp-install": re.compile(r"^wordpress:cli-\d+\.\d+\.\d+-php8\.[3-9]$"),
    "setup": re.compile(r"^wordpress:cli-\d+\.\d+\.\d+-php8\.[3-9]$"),
}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(COMPOSE.read_text())
    return data["services"]


def seconds(duration: str) -> float:
    """A compose duration (45s, 1m30s, 1m) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    assert parts and any(parts.groups()), f"not a duration: {duration!r}"
    return int(parts[1] or 0) * 60 + int(parts[2] or 0)


def depends(services: dict[str, Any], name: str) -> dict[str, str]:
    deps = services[name].get("depends_on") or {}
    return {k: v.get("condition", "service_started") for k, v in deps.items()}


def script_of(service: dict[str, Any]) -> str:
    return "\n".join(str(c) for c in service.get("command") or [])


# ------------------------------------------------------------------ item 1: the points
def test_every_service_has_no_new_privileges_and_drops_all_caps(services):
    for name, svc in services.items():
        assert "no-new-privileges:true" in (svc.get("security_opt") or []), name
        assert svc.get("cap_drop") == ["ALL"], f"{name} keeps Docker's default capabilities"
        added = set(svc.get("cap_add") or [])
        assert added <= CAPS_ALLOWED.get(name, set()), f"{name} adds {added}"
    for name in ("redis", *SIDECAR_SERVICES, "wp-install", "setup"):
        assert not services[name].get("cap_add"), f"{name} needs no capability"


@pytest.mark.parametrize("name", SIDECAR_SERVICES)
def test_sidecar_root_filesystem_is_read_only_with_a_tmpfs(services, name):
    svc = services[name]
    assert svc.get("read_only") is True
    tmpfs = {t.split(":")[0]: t for t in svc.get("tmpfs") or []}
    assert "/tmp" in tmpfs and "size=" in tmpfs["/tmp"], "an unbounded /tmp eats memory"
    env = env_of(svc)
    data_dir = env["FORMRELAY_DATA_DIR"]  # prometheus multiprocess files, the sqlite queue
    assert any(data_dir == t or data_dir.startswith(t + "/") for t in tmpfs), data_dir
    steps = dockerfile_instructions()
    assert any(w == "ENV" and "PYTHONDONTWRITEBYTECODE=1" in r for w, r in steps), (
        "Python would try to write bytecode next to the read-only code")


def test_other_services_with_a_read_only_root(services):
    for name in ("redis", "uploads-init", "wp-install", "setup"):
        assert services[name].get("read_only") is True, name


@pytest.mark.parametrize("name", ("web", "worker"))
def test_stop_grace_outlasts_the_shutdown_time(services, name):
    svc = services[name]
    shutdown = env_of(svc).get("FORMRELAY_SHUTDOWN_SECONDS")
    assert shutdown, "FORMRELAY_SHUTDOWN_SECONDS must be set explicitly next to the grace"
    parsed = config.load("migrate", environ={"FORMRELAY_SHUTDOWN_SECONDS": shutdown,
                                               "WORDPRESS_DB_USER": "u",
                                               "WORDPRESS_DB_NAME": "d"}).shutdown_seconds
    grace = seconds(svc["stop_grace_period"])
    assert grace >= parsed + 10, f"{name}: {grace}s grace for a {parsed}s shutdown"


def test_healthchecks(services):
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    for name in ONE_SHOTS:  # they exit; the image's HEALTHCHECK would probe nothing
        assert services[name].get("healthcheck") == {"disable": True}, name
    assert "healthcheck.sh" in services["db"]["healthcheck"]["test"]
    assert "wp-login.php" in " ".join(services["wordpress"]["healthcheck"]["test"])
    redis = " ".join(services["redis"]["healthcheck"]["test"])
    assert "REDISCLI_AUTH" in redis and SECRETS_DIR + "redis_password" in redis
    # web: /readyz, worker: /livez, both through sidecar.probe (tests/test_compose.py).
    assert services["web"]["healthcheck"]["test"][-1] == "/readyz"
    assert services["worker"]["healthcheck"]["test"][-1] == "/livez"


def test_uploads_are_chowned_to_www_data_before_wordpress(services):
    init = services["uploads-init"]
    wp_uploads = {t: s for s, t, _ in mounts_of(services["wordpress"])}[UPLOADS_IN_WP]
    mounts = {t: (s, ro) for s, t, ro in mounts_of(init)}
    target = next(t for t, (s, ro) in mounts.items() if s == wp_uploads and not ro)
    assert init["entrypoint"] == ["chown", WWW_DATA, target]
    assert str(init.get("user")) == "0:0" and init.get("restart") == "no"
    assert depends(services, "wordpress")["uploads-init"] == "service_completed_successfully"
    for name in SIDECAR_SERVICES:  # the sidecar reads them, never writes
        assert (wp_uploads, True) in {(s, ro) for s, t, ro in mounts_of(services[name])}, name


def test_wordpress_files_are_on_a_named_volume(services):
    data = yaml.safe_load(COMPOSE.read_text())
    for name in ("wordpress", "wp-install", "setup"):
        mounts = {t: (s, ro) for s, t, ro in mounts_of(services[name])}
        assert mounts.get("/var/www/html") == ("wordpress", False), name
        plugin = mounts["/var/www/html/wp-content/plugins/formrelay-bridge"]
        assert plugin == ("./wp_bridge_plugin", True), f"{name}: the bridge must stay read-only"
    assert "wordpress" in data["volumes"]


def test_a_bad_setting_stops_the_stack_at_migrate(services):
    """migrate runs once (restart "no"), before web and worker, with their settings."""
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker"):
        assert services[name]["restart"] == "unless-stopped", f"{name} must survive a reboot"
        assert depends(services, name)["migrate"] == "service_completed_successfully"
    runtime = env_of(services["web"])
    migrate = env_of(services["migrate"])
    settings = {k for k in runtime if k not in ("WORDPRESS_DB_USER", "WORDPRESS_DB_PASSWORD_FILE")}
    assert {k: migrate.get(k) for k in settings} == {k: runtime[k] for k in settings}
    own = {s for s in services["web"]["secrets"] if s != "formrelay_db_password"}
    assert own <= set(services["migrate"]["secrets"]), "migrate must read the same secret files"
    assert formrelay_invocations(services["migrate"]) == [services["migrate"]["command"]]
    assert "--create-user" in services["migrate"]["command"]  # which migrates first


def test_migrate_exits_78_with_the_message_on_a_short_secret(services, tmp_path, monkeypatch,
                                                              capsys):
    """The real CLI with migrate's environment and a 10-character shared secret file:
    exit 78 (EX_CONFIG) and one line naming the file, before any database connection."""
    svc = services["migrate"]
    files = secret_files(svc, tmp_path)
    env = {k: sample_value(v) for k, v in env_of(svc).items()}
    env = {k: files.get(v, v) for k, v in env.items()}
    env["FORMRELAY_UPLOADS_DIR"] = str(tmp_path)
    Path(files[SECRETS_DIR + "formrelay_shared_secret"]).write_text("too-short\n")
    for key in list(os.environ):
        if key.startswith(("FORMRELAY_", "WORDPRESS_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = formrelay_invocations(svc)[0]
    assert cli.main(argv) == cli.EX_CONFIG == 78
    err = capsys.readouterr().err
    assert "FORMRELAY_SHARED_SECRET_FILE" in err and "at least 16 characters" in err
    assert "too-short" not in err, "the secret itself must never be printed"


def test_sidecar_logs_in_as_its_own_least_privilege_user(services):
    db = env_of(services["db"])
    assert db["MARIADB_ROOT_PASSWORD_FILE"] == SECRETS_DIR + "db_root_password"
    assert "MARIADB_RANDOM_ROOT_PASSWORD" not in db
    migrate = env_of(services["migrate"])
    assert migrate["WORDPRESS_DB_USER"] == "root"
    assert migrate["WORDPRESS_DB_PASSWORD_FILE"] == SECRETS_DIR + "db_root_password"
    create = formrelay_invocations(services["migrate"])[-1]
    assert create[:3] == ["migrate", "--create-user", "formrelay"]
    flags = dict(zip(create[3::2], create[4::2], strict=True))
    assert flags["--password-file"] == SECRETS_DIR + "formrelay_db_password"
    assert flags.get("--host", "%") == "%"  # containers connect from the compose network
    wordpress_user = env_of(services["wordpress"])["WORDPRESS_DB_USER"]
    for name in ("web", "worker"):
        env = env_of(services[name])
        assert env["WORDPRESS_DB_USER"] == "formrelay" != sample_value(wordpress_user)
        assert env["WORDPRESS_DB_PASSWORD_FILE"] == SECRETS_DIR + "formrelay_db_password"
        assert "db_root_password" not in services[name]["secrets"], name


def test_images_are_pinned_and_current(services):
    for name, pattern in PINNED.items():
        image = str(services[name]["image"])
        match = pattern.match(image)
        assert match, f"{name}: {image} is not an exact, current tag"
        if name == "wordpress":
            assert (int(match["wp"]), int(match["minor"])) >= (6, 1), "WordPress 6.1+"
    assert services["uploads-init"]["image"] == services["wordpress"]["image"]
    for name in SIDECAR_SERVICES:
        assert "build" in services[name]


def test_setup_installs_wpforms_and_activates_the_bridge(services):
    setup = services["setup"]
    assert setup.get("profiles") == ["setup"], "setup runs by hand only (it needs the internet)"
    script = script_of(setup)
    assert ("wp plugin is-installed wpforms-lite || wp plugin install wpforms-lite --activate"
            in script)
    assert "wp plugin activate formrelay-bridge" in script
    assert str(setup["user"]) == WWW_DATA, "WP-CLI must write files as Apache's www-data"
    assert depends(services, "setup")["wp-install"] == "service_completed_successfully"
    install = script_of(services["wp-install"])
    assert install.index("wp core is-installed") < install.index("wp core install")
    assert "--prompt=admin_password < /run/secrets/wp_admin_password" in install
    assert "$$" not in install.replace("$$WP_", ""), "every $ for the shell is escaped"
    for name in ("setup", "wp-install"):
        assert setup["image"] == services[name]["image"] and services[name]["user"] == WWW_DATA


# ------------------------------------------------------------------ item 3: the image
def test_dockerfile_base_is_pinned_by_digest():
    base = dockerfile_instructions()[0]
    assert base[0] == "FROM"
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", base[1]), base[1]


def test_dockerfile_installs_the_lock_with_hashes():
    runs = [r for w, r in dockerfile_instructions() if w == "RUN" and "-r requirements.lock" in r]
    assert runs and "--require-hashes" in runs[0] and "--no-deps" in runs[0]
    lock = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-\[\]]+)==\S+((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)",
                      lock, flags=re.MULTILINE)
    assert pins, "requirements.lock has no pins"
    unhashed = [name for name, hashes in pins if "--hash=sha256:" not in hashes]
    assert not unhashed, f"pins without a hash: {unhashed}"


def test_dockerfile_runs_as_non_root_with_a_healthcheck():
    steps = dockerfile_instructions()
    users = [r for w, r in steps if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [w for w, _ in steps].count("HEALTHCHECK") == 1
    user_at = max(i for i, (w, _) in enumerate(steps) if w == "USER")
    assert not any(w == "RUN" for w, _ in steps[user_at:]), "RUN after USER runs as the user"


# ------------------------------------------------------------------ the secret files
def test_make_secrets_writes_every_declared_secret(tmp_path):
    declared = set(yaml.safe_load(COMPOSE.read_text())["secrets"])
    target = tmp_path / "secrets"
    script = ROOT / "deploy/compose/make-secrets.sh"
    env = {"PATH": os.environ["PATH"], "FORMRELAY_PARTNER_TOKEN": "partner-token-1"}
    first = subprocess.run(["sh", str(script), str(target)], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert {p.name for p in target.iterdir()} == declared
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    values = {}
    for path in target.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
        values[path.name] = path.read_text().removesuffix("\n")
        assert values[path.name] and values[path.name] not in first.stdout + first.stderr
    config_parsers.secret(values["formrelay_shared_secret"])
    assert values["formrelay_partner_token"] == "partner-token-1"
    assert len({values[k] for k in declared if k.endswith("password")}) == 5, "reused value"
    second = subprocess.run(["sh", str(script), str(target)], env=env, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 0 and "written" not in second.stdout
    assert {p.name: p.read_text().removesuffix("\n") for p in target.iterdir()} == values


def test_make_secrets_refuses_a_redis_url_without_its_password(tmp_path):
    (tmp_path / "formrelay_redis_url").write_text("redis://:old@redis:6379/0\n")
    out = subprocess.run(["sh", str(ROOT / "deploy/compose/make-secrets.sh"), str(tmp_path)],
                         env={"PATH": os.environ["PATH"]}, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "remove it to make both" in out.stderr
    assert not (tmp_path / "redis_password").exists()


"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

No engine runs where the suite runs, so these tests read the files and hold
them against the code they start: every sidecar command exists in
`sidecar.cli.COMMANDS`, every setting name is one `sidecar.config` reads, the
settings each command needs are provided (and parse), secrets come from the
environment, and the image gets every file the package needs.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar import cli, config, config_parsers

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SIDECAR_SERVICES = ("migrate", "web", "worker")
PLUGIN_DIR_IN_WP = "/var/www/html/wp-content/plugins/formrelay-bridge"
UPLOADS_IN_WP = "/var/www/html/wp-content/uploads"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}$")
REQUIRED_SECRETS = ("WORDPRESS_DB_PASSWORD", "FORMRELAY_SHARED_SECRET")


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no services"
    return data


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever form compose allows."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: v for k, v in pairs}
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def mounts_of(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) for each volume of a service (short or long syntax)."""
    mounts = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, str):
            parts = vol.split(":")
            assert len(parts) >= 2, f"anonymous or malformed volume {vol!r}"
            mode = parts[2] if len(parts) > 2 else ""
            mounts.append((parts[0], parts[1], "ro" in mode.split(",")))
        else:
            mounts.append((str(vol.get("source", "")), str(vol["target"]),
                           bool(vol.get("read_only", False))))
    return mounts


def sample_value(raw: str) -> str:
    """What an interpolated value becomes once its variable is set (secrets long enough)."""
    match = INTERPOLATION.match(raw)
    if not match:  # e.g. redis://:${FORMRELAY_REDIS_PASSWORD:?...}@redis:6379/0
        return re.sub(r"\$\{[^}]*\}", lambda m: sample_value(m.group(0)), raw)
    name = match["name"]
    if name == "FORMRELAY_PARTNER_URL":
        return "https://partner.example/api"
    if SECRET_NAME.search(name):
        return "x" * 32
    if match["op"] in (":-", "-") and match["arg"]:
        return match["arg"]
    return "wordpress"


def sidecar_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: compose["services"][name] for name in SIDECAR_SERVICES}


# ------------------------------------------------------------------ the services
def test_services_and_images(compose):
    services = compose["services"]
    assert set(services) >= {"db", "redis", "wordpress", *SIDECAR_SERVICES}
    assert str(services["db"]["image"]).startswith("mariadb:10.11")
    assert str(services["redis"]["image"]).startswith("redis:7")
    assert str(services["wordpress"]["image"]).startswith("wordpress:")
    built = {name for name, svc in services.items() if "build" in svc}
    assert built == set(SIDECAR_SERVICES), f"services built from the Dockerfile: {built}"
    for name, svc in sidecar_services(compose).items():
        build = svc["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        assert (ROOT / context / "Dockerfile").resolve() == DOCKERFILE, name


def test_sidecar_commands_exist(compose):
    assert "migrate" in cli.COMMANDS  # sanity: the tuple is the CLI's real one
    for name, svc in sidecar_services(compose).items():
        cmd = command_of(svc)
        assert cmd, f"{name} has no command"
        assert cmd[0] in cli.COMMANDS, f"{name}: `formrelay {cmd[0]}` is not a command"
        assert cmd[0] == name, f"service {name} runs `formrelay {cmd[0]}`"


def test_sidecar_env_names_are_settings(compose):
    known = set(config.ENV_VARS)
    for name, svc in sidecar_services(compose).items():
        used = {k for k in env_of(svc) if k.startswith(("FORMRELAY_", "WORDPRESS_"))}
        assert used, f"{name} has no FormRelay settings"
        unknown = used - known
        assert not unknown, f"{name} sets names sidecar.config never reads: {sorted(unknown)}"


def test_sidecar_services_share_one_environment(compose):
    envs = [env_of(svc) for svc in sidecar_services(compose).values()]
    assert all(env == envs[0] for env in envs), "sidecar services differ in environment"
    env = envs[0]
    assert env["FORMRELAY_REDIS_URL"].startswith(("redis://:", "rediss://:"))
    assert env["FORMRELAY_REDIS_URL"].rpartition("@")[2].startswith("redis:")
    assert env["WORDPRESS_DB_HOST"].split(":")[0] == "db"
    assert "FORMRELAY_LISTEN" in env


@pytest.mark.parametrize("service", SIDECAR_SERVICES)
def test_required_settings_are_provided_and_parse(compose, service, tmp_path):
    svc = compose["services"][service]
    command = command_of(svc)[0]
    env = env_of(svc)
    needed = config.REQUIRED.get(command, config.DATABASE)
    for setting in needed:
        var = config.SETTINGS_BY_NAME[setting].env
        assert var in env, f"{service}: `formrelay {command}` needs {var}"
        raw = env[var]
        match = INTERPOLATION.match(raw)
        assert raw and not (match and match["op"] in (":-", "-") and not match["arg"]), (
            f"{service}: {var} may end up empty")
    values = {k: sample_value(v) for k, v in env.items()}
    # The uploads dir must exist to parse; here it stands in for the mounted volume.
    uploads = values.get("FORMRELAY_UPLOADS_DIR")
    if uploads:
        assert uploads in {t for _, t, _ in mounts_of(svc)}, (
            f"{service}: FORMRELAY_UPLOADS_DIR {uploads} is not a mounted volume")
        values["FORMRELAY_UPLOADS_DIR"] = str(tmp_path)
    config.load(command, environ=values)  # raises ConfigError listing any problem


def test_web_listens_where_wordpress_sends(compose):
    web_env = env_of(compose["services"]["web"])
    host, _, port = web_env["FORMRELAY_LISTEN"].rpartition(":")
    assert host and not host.startswith(("127.", "localhost", "[::1]", "::1")), (
        "web must listen beyond its own loopback for WordPress to reach it")
    extra = env_of(compose["services"]["wordpress"])["WORDPRESS_CONFIG_EXTRA"]
    url = re.search(r"define\(\s*'FORMRELAY_SIDECAR_URL'\s*,\s*'([^']*)'\s*\)", extra)
    assert url, "WORDPRESS_CONFIG_EXTRA does not define FORMRELAY_SIDECAR_URL"
    assert url[1] == f"http://web:{port}"
    secret = re.search(r"define\(\s*'FORMRELAY_SHARED_SECRET'\s*,\s*(.+?)\);", extra)
    assert secret, "WORDPRESS_CONFIG_EXTRA does not define FORMRELAY_SHARED_SECRET"
    assert re.fullmatch(r"getenv(_docker)?\(\s*'FORMRELAY_SHARED_SECRET'.*\)", secret[1].strip()), (
        "the plugin's secret must come from the environment")


def test_wordpress_database_matches_the_sidecars(compose):
    wp = env_of(compose["services"]["wordpress"])
    side = env_of(compose["services"]["web"])
    for var in ("WORDPRESS_DB_HOST", "WORDPRESS_DB_USER", "WORDPRESS_DB_PASSWORD",
                "WORDPRESS_DB_NAME", "WORDPRESS_TABLE_PREFIX"):
        assert wp.get(var) == side.get(var), f"wordpress and the sidecar differ in {var}"
    assert wp["FORMRELAY_SHARED_SECRET"] == side["FORMRELAY_SHARED_SECRET"]


def test_worker_is_scalable(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "a container_name stops --scale worker=N"
    assert not worker.get("ports"), "a fixed host port stops --scale worker=N"
    assert "hostname" not in worker


def test_plugin_is_mounted_from_the_repo(compose):
    mounts = {t: (s, ro) for s, t, ro in mounts_of(compose["services"]["wordpress"])}
    assert PLUGIN_DIR_IN_WP in mounts, "the plugin is not mounted into WordPress"
    source = ROOT / mounts[PLUGIN_DIR_IN_WP][0]
    assert source.resolve() == (ROOT / "wp_bridge_plugin").resolve()
    assert (source / "formrelay-bridge.php").is_file(), "the plugin's main file is missing"


def test_uploads_shared_read_only_with_the_sidecar(compose):
    wp = {t: s for s, t, _ in mounts_of(compose["services"]["wordpress"])}
    assert UPLOADS_IN_WP in wp, "WordPress uploads are not on a volume"
    volume = wp[UPLOADS_IN_WP]
    for name, svc in sidecar_services(compose).items():
        mounts = {t: (s, ro) for s, t, ro in mounts_of(svc)}
        assert mounts.get("/uploads") == (volume, True), (
            f"{name} must mount {volume} read-only at /uploads")


def test_named_volumes_are_declared(compose):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, svc in compose["services"].items():
        for source, _, _ in mounts_of(svc):
            if source and not source.startswith((".", "/", "~", "$")):
                used.add(source)
                assert source in declared, f"{name} uses undeclared volume {source!r}"
    assert {"uploads"} <= used


def test_start_order(compose):
    services = compose["services"]

    def conditions(name: str) -> dict[str, str]:
        deps = services[name].get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        return {k: v.get("condition", "service_started") for k, v in deps.items()}

    assert conditions("migrate").get("db") == "service_healthy"
    assert services["migrate"].get("restart") == "no"
    for name in ("web", "worker"):
        assert conditions(name).get("migrate") == "service_completed_successfully", name
    for name in services:
        for dep, cond in conditions(name).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")


def test_secrets_are_interpolated_not_literal(compose):
    seen = set()
    for name, svc in compose["services"].items():
        for var, raw in env_of(svc).items():
            if not SECRET_NAME.search(var) or var.endswith("_FILE"):
                continue
            if var == "MARIADB_RANDOM_ROOT_PASSWORD":
                continue  # a flag, not a secret
            match = INTERPOLATION.match(raw)
            assert match, f"{name}: {var} is a literal, not ${{VAR}} from the environment"
            seen.add(var)
            if var in REQUIRED_SECRETS or var == "MARIADB_PASSWORD":
                assert match["op"] == ":?", f"{name}: {var} must be ${{VAR:?...}} (required)"
            elif match["op"] in (":-", "-"):
                assert not match["arg"], f"{name}: {var} has a literal default"
    assert set(REQUIRED_SECRETS) <= seen


def test_redis_requires_the_password_the_sidecar_sends(compose):
    """Redis runs with requirepass from a required variable; the sidecar's URL carries it."""
    redis = compose["services"]["redis"]
    required = "${FORMRELAY_REDIS_PASSWORD:?set FORMRELAY_REDIS_PASSWORD}"
    assert env_of(redis)["REDISCLI_AUTH"] == required  # redis-cli (healthcheck) reads it
    assert '--requirepass "$$REDISCLI_AUTH"' in " ".join(command_of(redis))
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    for name, svc in sidecar_services(compose).items():
        url = env_of(svc)["FORMRELAY_REDIS_URL"]
        assert url == f"redis://:{required}@redis:6379/0", name
        shown = config_parsers.redis_location(sample_value(url))
        assert shown == "redis://redis:6379/0 (with password)"


def test_redis_is_off_the_wordpress_network(compose):
    """Two networks: WordPress and its database on one, Redis on another (internal: no
    way out), the sidecar's web and workers on both, so only they can reach Redis."""
    services = compose["services"]

    def networks(name: str) -> set[str]:
        nets = services[name].get("networks")
        assert nets, f"{name} names no network (it would join the default one)"
        return set(nets)

    declared = compose.get("networks") or {}
    assert networks("redis") == {"queue"} and declared["queue"].get("internal") is True
    assert networks("wordpress") == {"site"} and networks("db") == {"site"}
    assert networks("migrate") == {"site"}
    for name in ("web", "worker"):
        assert networks(name) == {"site", "queue"}, name
    for name in services:
        assert networks(name) <= set(declared), f"{name} uses an undeclared network"


def test_compose_config_validates_and_needs_the_redis_password():
    """`docker-compose config` (where installed) accepts the file with the variables set, and
    refuses it, naming the variable, without FORMRELAY_REDIS_PASSWORD."""
    tool = shutil.which("docker-compose")
    if not tool:
        pytest.skip("docker-compose is not installed here")
    env = {"PATH": os.environ["PATH"], "WORDPRESS_DB_PASSWORD": "x" * 16,
           "FORMRELAY_SHARED_SECRET": "x" * 32, "FORMRELAY_PARTNER_URL": "https://p.example",
           "FORMRELAY_REDIS_PASSWORD": "abc123"}
    ok = subprocess.run([tool, "-f", str(COMPOSE), "config", "-q"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    env.pop("FORMRELAY_REDIS_PASSWORD")
    refused = subprocess.run([tool, "-f", str(COMPOSE), "config", "-q"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "set FORMRELAY_REDIS_PASSWORD" in refused.stderr


# ------------------------------------------------------------------ the image
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def package_needs() -> set[str]:
    """Repo paths `pip install .` reads: pyproject, readme, packages and their link targets."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needs = {"pyproject.toml"}
    readme = meta["project"].get("readme")
    if readme:
        needs.add(readme if isinstance(readme, str) else readme["file"])
    setuptools = meta["tool"]["setuptools"]
    packages = setuptools.get("packages", [])
    if isinstance(packages, dict):  # [tool.setuptools.packages.find] include = ["sidecar*"]
        packages = sorted({p.split(".")[0].rstrip("*") for p in packages["find"]["include"]})
    for package in packages:
        pkg_dir = ROOT / package.replace(".", "/")
        needs.add(pkg_dir.relative_to(ROOT).as_posix())
        for path in pkg_dir.rglob("*"):
            if path.is_symlink():
                needs.add(path.resolve().relative_to(ROOT).as_posix())
    return needs


def test_the_schema_link_is_a_package_need():
    assert "wp_bridge_plugin/schema" in package_needs()


def test_dockerfile_copies_what_the_package_needs():
    steps = dockerfile_instructions()
    install_at = next((i for i, (w, rest) in enumerate(steps)
                       if w == "RUN" and re.search(r"pip install\s+(\S+\s+)*\.(\s|$)", rest)), None)
    assert install_at is not None, "the Dockerfile never runs `pip install .`"
    copied: list[str] = []
    for word, rest in steps[:install_at]:
        if word in ("COPY", "ADD"):
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            copied += [a.rstrip("/") or "." for a in args[:-1]]
    for need in sorted(package_needs()):
        covered = any(src in (".", "./") or need == src or need.startswith(src + "/")
                      for src in (c.removeprefix("./") for c in copied))
        assert covered, f"the image lacks {need} when `pip install .` runs"


def test_dockerignore_keeps_what_the_package_needs():
    patterns = [p.strip().rstrip("/") for p in DOCKERIGNORE.read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "negations: extend this test"
    for must in (".venv", ".git"):
        assert must in patterns, f".dockerignore lets {must} into the build context"
    for need in package_needs():
        parts = need.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in patterns:
            hit = [p for p in prefixes if fnmatch.fnmatch(p, pattern.removeprefix("/"))]
            assert not hit, f".dockerignore pattern {pattern!r} drops {need}"


def test_image_runs_formrelay_as_non_root():
    steps = dockerfile_instructions()
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    assert any(w == "RUN" and "libmagic1" in rest for w, rest in steps), "no libmagic1"
    users = [rest for w, rest in steps if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"
    entry = [rest for w, rest in steps if w == "ENTRYPOINT"]
    assert entry and yaml.safe_load(entry[-1]) == ["formrelay"]


# ------------------------------------------------------------------ health checks
def served_paths() -> set[str]:
    """The paths the health routes answer (sidecar.health_routes), as Flask maps them."""
    from sidecar.health_routes import HealthRoutes
    from sidecar.ops_http import create_ops_app

    app = create_ops_app(HealthRoutes(None))  # type: ignore[arg-type]  # routes only: no store
    return {rule.rule for rule in app.url_map.iter_rules()}


@pytest.mark.parametrize("service,listen_var,path", [
    ("web", "FORMRELAY_LISTEN", "/readyz"), ("worker", "FORMRELAY_WORKER_LISTEN", "/livez")])
def test_sidecar_healthchecks_probe_their_own_listener(compose, service, listen_var, path):
    from sidecar import probe

    svc = compose["services"][service]
    test = [str(t) for t in svc["healthcheck"]["test"]]
    assert test[:4] == ["CMD", "python", "-m", "sidecar.probe"], test
    env = {k: sample_value(v) for k, v in env_of(svc).items()}
    listen = env[listen_var]
    config_parsers.host_port(listen)  # a valid FORMRELAY_*LISTEN
    assert listen.startswith("0.0.0.0:"), f"{service}: Prometheus must reach {listen_var}"
    assert probe.target(test[4:], env, "") == probe.local_url(listen, path)
    assert path in served_paths()
    assert {"/livez", "/readyz", "/healthz", "/metrics"} <= served_paths()


def test_web_and_worker_listen_on_different_ports(compose):
    env = env_of(compose["services"]["worker"])
    assert env["FORMRELAY_LISTEN"].rpartition(":")[2] != (
        env["FORMRELAY_WORKER_LISTEN"].rpartition(":")[2])


def test_image_healthcheck_probes_what_the_container_runs():
    checks = [rest for w, rest in dockerfile_instructions() if w == "HEALTHCHECK"]
    assert len(checks) == 1
    cmd = checks[0].partition("CMD")[2].strip()
    assert yaml.safe_load(cmd) == ["python", "-m", "sidecar.probe"]


@pytest.mark.parametrize("cmdline,env,url", [
    (b"/usr/local/bin/python\0/usr/local/bin/formrelay\0run\0", {}, "http://127.0.0.1:8787/readyz"),
    (b"/usr/local/bin/python\0/usr/local/bin/formrelay\0web\0",
     {"FORMRELAY_LISTEN": "0.0.0.0:9000"}, "http://127.0.0.1:9000/readyz"),
    (b"/usr/local/bin/python\0/usr/local/bin/formrelay\0worker\0",
     {"FORMRELAY_WORKER_LISTEN": "[::]:8788"}, "http://[::1]:8788/livez"),
    (b"/usr/local/bin/python\0/usr/local/bin/formrelay\0worker\0", {}, None),
])
def test_the_image_probe_reads_the_containers_command(tmp_path, cmdline, env, url):
    from sidecar import probe

    (tmp_path / "cmdline").write_bytes(cmdline)
    command = probe.container_command(tmp_path / "cmdline")
    assert probe.target([], env, command) == url

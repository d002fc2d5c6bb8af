"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

No engine runs where the suite runs, so these tests read the files and hold
them against the code they start: every sidecar command exists in
`sidecar.cli.COMMANDS`, every setting name is one `sidecar.config` reads, the
settings each command needs are provided (and parse), secrets come from secret
files, and the image gets every file the package needs. The hardening properties
(issue 13) are held in tests/test_compose_hardening.py.
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
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|REDIS_URL|AUTH")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}
INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Z_][A-Z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}$")
SECRETS_DIR = "/run/secrets/"
# What each secret file holds in these tests (valid for whatever reads it).
SAMPLE_SECRETS = {
    "formrelay_shared_secret": "s" * 32,
    "formrelay_redis_url": "redis://:abc123@redis:6379/0",
    "formrelay_partner_token": "token-123",
}
# Variables compose must refuse to start without (`${NAME:?...}`): the settings of
# the site that no default can stand for.
REQUIRED_VARS = ("FORMRELAY_PARTNER_URL", "WP_ADMIN_USER", "WP_ADMIN_EMAIL")


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


def formrelay_invocations(service: dict[str, Any]) -> list[list[str]]:
    """Each `formrelay ...` a sidecar service runs: its command (the image's ENTRYPOINT is
    `formrelay`), or the `formrelay` lines of an `sh -c` script (`a && exec b`)."""
    entry = service.get("entrypoint")
    if entry is None:
        return [command_of(service)]
    entry = shlex.split(entry) if isinstance(entry, str) else [str(e) for e in entry]
    assert entry[0] == "sh" and entry[-1].endswith("c"), f"unexpected entrypoint {entry}"
    script = " ".join(command_of(service)) if isinstance(service.get("command"), str) else (
        "\n".join(str(c) for c in service["command"]))
    runs = []
    for part in re.split(r"&&|\|\||;|\n", script):
        words = shlex.split(part)
        if words[:1] == ["exec"]:
            words = words[1:]
        if words:
            assert words[0] == "formrelay", f"the script runs {words[0]!r}, not formrelay"
            runs.append(words[1:])
    return runs


def secret_files(service: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """/run/secrets/<name> -> a file with a sample value, for each secret the service mounts."""
    out = {}
    for name in service.get("secrets") or []:
        name = name if isinstance(name, str) else name["source"]
        path = tmp_path / name
        path.write_text(SAMPLE_SECRETS.get(name, "pw-" + name) + "\n")
        out[SECRETS_DIR + name] = str(path)
    return out


def sample_value(raw: str) -> str:
    """What an interpolated value becomes once its variable is set (secrets long enough)."""
    match = INTERPOLATION.match(raw)
    if not match:  # a value with a variable inside, e.g. http://localhost:${PORT:-8080}
        return re.sub(r"\$\{[^}]*\}", lambda m: sample_value(m.group(0)), raw)
    name = match["name"]
    if name == "FORMRELAY_PARTNER_URL":
        return "https://partner.example/api"
    if match["op"] in (":-", "-") and match["arg"]:
        return match["arg"]
    if SECRET_NAME.search(name):
        return "x" * 32
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
        runs = formrelay_invocations(svc)
        assert runs and all(runs), f"{name} has no command"
        for cmd in runs:
            assert cmd[0] in cli.COMMANDS, f"{name}: `formrelay {cmd[0]}` is not a command"
            assert cmd[0] == name, f"service {name} runs `formrelay {cmd[0]}`"


def test_sidecar_command_lines_parse(compose):
    """Every flag a sidecar service passes is one the real argument parser takes."""
    parser = cli.build_parser()
    for name, svc in sidecar_services(compose).items():
        for argv in formrelay_invocations(svc):
            args = parser.parse_args(argv)  # argparse exits 2 on an unknown flag
            assert args.command == name


def test_sidecar_env_names_are_settings(compose):
    known = set(config.ENV_VARS)
    for name, svc in sidecar_services(compose).items():
        used = {k for k in env_of(svc) if k.startswith(("FORMRELAY_", "WORDPRESS_"))}
        assert used, f"{name} has no FormRelay settings"
        unknown = used - known
        assert not unknown, f"{name} sets names sidecar.config never reads: {sorted(unknown)}"


DB_ACCOUNT = ("WORDPRESS_DB_USER", "WORDPRESS_DB_PASSWORD_FILE")


def test_sidecar_services_share_one_environment(compose):
    """web and worker run with one environment; migrate with the same settings but the
    database's admin account (it creates tables and the sidecar's own user)."""
    envs = {name: env_of(svc) for name, svc in sidecar_services(compose).items()}
    assert envs["web"] == envs["worker"], "web and worker differ in environment"
    strip = lambda env: {k: v for k, v in env.items() if k not in DB_ACCOUNT}  # noqa: E731
    assert strip(envs["migrate"]) == strip(envs["web"]), "migrate loads other settings"
    env = envs["web"]
    assert env["FORMRELAY_REDIS_URL_FILE"] == SECRETS_DIR + "formrelay_redis_url"
    assert env["WORDPRESS_DB_HOST"].split(":")[0] == "db"
    assert "FORMRELAY_LISTEN" in env


@pytest.mark.parametrize("service", SIDECAR_SERVICES)
def test_required_settings_are_provided_and_parse(compose, service, tmp_path):
    svc = compose["services"][service]
    command = formrelay_invocations(svc)[0][0]
    env = env_of(svc)
    needed = config.REQUIRED.get(command, config.DATABASE)
    for setting in needed:
        var = config.SETTINGS_BY_NAME[setting].env
        s = config.SETTINGS_BY_NAME[setting]
        var = var if var in env or not s.secret else f"{var}_FILE"
        assert var in env, f"{service}: `formrelay {command}` needs {s.env}"
        raw = env[var]
        match = INTERPOLATION.match(raw)
        assert raw and not (match and match["op"] in (":-", "-") and not match["arg"]), (
            f"{service}: {var} may end up empty")
    files = secret_files(svc, tmp_path)
    values = {k: sample_value(v) for k, v in env.items()}
    for var, value in values.items():
        if var.endswith("_FILE"):
            assert value in files, f"{service}: {var}={value} is not a secret it mounts"
            values[var] = files[value]
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
    """One database and table prefix, one shared secret file; but not one account: the
    sidecar's is its own least-privilege user (tests/test_compose_hardening.py)."""
    wp = env_of(compose["services"]["wordpress"])
    side = env_of(compose["services"]["web"])
    for var in ("WORDPRESS_DB_HOST", "WORDPRESS_DB_NAME", "WORDPRESS_TABLE_PREFIX"):
        assert wp.get(var) == side.get(var), f"wordpress and the sidecar differ in {var}"
    assert wp["FORMRELAY_SHARED_SECRET_FILE"] == side["FORMRELAY_SHARED_SECRET_FILE"]
    assert wp["WORDPRESS_DB_USER"] != side["WORDPRESS_DB_USER"]


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
    # `formrelay migrate` refuses a database without WordPress' tables: install first.
    assert conditions("migrate").get("wp-install") == "service_completed_successfully"
    assert conditions("wp-install").get("wordpress") == "service_healthy"
    assert services["migrate"].get("restart") == "no"
    for name in ("web", "worker"):
        assert conditions(name).get("migrate") == "service_completed_successfully", name
    for name in services:
        for dep, cond in conditions(name).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if cond == "service_healthy":
                assert services[dep].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")


def test_no_secret_in_the_environment(compose):
    """A secret is never an environment variable (it would show in `docker inspect`):
    only `<NAME>_FILE` pointing at a Docker secret the service mounts."""
    declared = set(compose.get("secrets") or {})
    seen = set()
    for name, svc in compose["services"].items():
        mounted = {s if isinstance(s, str) else s["source"] for s in svc.get("secrets") or []}
        assert mounted <= declared, f"{name} mounts undeclared secrets {mounted - declared}"
        for var, raw in env_of(svc).items():
            if not SECRET_NAME.search(var):
                continue
            assert var.endswith("_FILE"), f"{name}: {var} holds a secret in the environment"
            match = INTERPOLATION.match(raw)
            path = match["arg"] if match else raw  # ${VAR-/run/secrets/x}: default is the file
            assert not match or match["op"] == "-", f"{name}: {var} {raw}"
            assert path.startswith(SECRETS_DIR), f"{name}: {var}={raw} is not a Docker secret"
            assert path.removeprefix(SECRETS_DIR) in mounted, f"{name} does not mount {path}"
            seen.add(var)
    assert {"WORDPRESS_DB_PASSWORD_FILE", "FORMRELAY_SHARED_SECRET_FILE",
            "FORMRELAY_PARTNER_TOKEN_FILE", "FORMRELAY_REDIS_URL_FILE",
            "MARIADB_PASSWORD_FILE", "MARIADB_ROOT_PASSWORD_FILE"} <= seen


def test_secret_files_live_in_the_ignored_directory(compose):
    for name, spec in (compose.get("secrets") or {}).items():
        assert set(spec) == {"file"}, f"secret {name}: only file-based secrets"
        assert spec["file"] == f"./secrets/{name}", f"secret {name} outside ./secrets/"
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/secrets/" in ignored and "/.env" in ignored
    assert ".env" in DOCKERIGNORE.read_text().splitlines()
    assert "secrets" in DOCKERIGNORE.read_text().splitlines(), "secrets/ would be in the image"


def test_required_variables_have_no_default(compose):
    text = COMPOSE.read_text()
    for var in REQUIRED_VARS:
        assert f"${{{var}:?set {var}}}" in text, f"{var} is not required"


def test_redis_requires_the_password_the_sidecar_sends(compose, tmp_path):
    """Redis' requirepass and its healthcheck read the redis_password secret; the sidecar's
    URL is the formrelay_redis_url secret, which make-secrets.sh writes from the same value."""
    redis = compose["services"]["redis"]
    assert "redis_password" in redis["secrets"]
    assert '--requirepass "$$(cat /run/secrets/redis_password)"' in " ".join(command_of(redis))
    check = " ".join(redis["healthcheck"]["test"])
    assert "redis-cli" in check and "REDISCLI_AUTH=\"$$(cat /run/secrets/redis_password)\"" in check
    for name, svc in sidecar_services(compose).items():
        assert env_of(svc)["FORMRELAY_REDIS_URL_FILE"] == SECRETS_DIR + "formrelay_redis_url"
        assert "formrelay_redis_url" in svc["secrets"], name
    out = subprocess.run(["sh", str(ROOT / "deploy/compose/make-secrets.sh"), str(tmp_path)],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                         env={"PATH": os.environ["PATH"]})
    assert out.returncode == 0, out.stderr
    password = (tmp_path / "redis_password").read_text().strip()
    url = (tmp_path / "formrelay_redis_url").read_text().removesuffix("\n")
    assert config_parsers.redis_url(url) == f"redis://:{password}@redis:6379/0"
    assert config_parsers.redis_location(url) == "redis://redis:6379/0 (with password)"


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
    assert networks("wp-install") == {"site"} and networks("setup") == {"site"}
    for name in ("web", "worker"):
        assert networks(name) == {"site", "queue"}, name
    # uploads-init only chowns a volume: no network at all.
    assert services["uploads-init"].get("network_mode") == "none"
    for name in services:
        if name != "uploads-init":
            assert networks(name) <= set(declared), f"{name} uses an undeclared network"


def compose_tools() -> list[tuple[str, list[str] | None, str]]:
    """(name, argv prefix or None, why absent): Debian's docker-compose 1.29 and the
    `docker compose` v2 plugin, each where installed."""
    tools: list[tuple[str, list[str] | None, str]] = []
    v1 = shutil.which("docker-compose")
    tools.append(("docker-compose", [v1] if v1 else None,
                  "docker-compose is not installed (scripts/bootstrap.sh installs it for"
                  " `make test`)"))
    docker = shutil.which("docker")
    v2 = None
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True,
                               timeout=30, env={"PATH": os.environ["PATH"]})
        v2 = [docker, "compose"] if probe.returncode == 0 else None
    tools.append(("docker compose", v2, "the docker compose v2 plugin is not installed"))
    return tools


CONFIG_ENV = {"FORMRELAY_PARTNER_URL": "https://p.example", "WP_ADMIN_USER": "site-admin",
              "WP_ADMIN_EMAIL": "admin@example.org"}


@pytest.mark.parametrize("tool", compose_tools(), ids=lambda t: t[0])
def test_compose_config_validates_and_needs_the_site_settings(tool):
    """`docker-compose config` and `docker compose config` (where installed) accept the
    file with the required variables set, and refuse it, naming the variable, without
    each of them."""
    name, argv, why = tool
    if argv is None:
        print(f"skipped: {why}")
        pytest.skip(why)
    env = {"PATH": os.environ["PATH"], **CONFIG_ENV}
    ok = subprocess.run([*argv, "-f", str(COMPOSE), "config", "-q"], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    profiles = subprocess.run([*argv, "-f", str(COMPOSE), "--profile", "setup", "config",
                               "--services"], env=env, capture_output=True, text=True,
                              timeout=60)
    assert profiles.returncode == 0, profiles.stderr
    assert "setup" in profiles.stdout.split()
    for var in REQUIRED_VARS:
        without = {k: v for k, v in env.items() if k != var}
        refused = subprocess.run([*argv, "-f", str(COMPOSE), "config", "-q"], env=without,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and f"set {var}" in refused.stderr, (name, var)


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

"""Read deploy/systemd/ the way systemd does, for the tests that check and run the units.

systemd itself cannot start them here (PID 1 is not systemd), so `service_process`
rebuilds what it would execute: the ExecStart= argv, and the environment from
Environment= lines, then the EnvironmentFile= files (which override them), with the
specifiers the units use (%i the instance, %d the credentials directory, %S /var/lib)
and each LoadCredential= source copied into a private credentials directory.
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UNIT_DIR = REPO / "deploy" / "systemd"
SERVICES = ("formrelay-web.service", "formrelay-worker@.service")
# What the units name on a real host -> where the tests keep it.
INSTALLED_BIN = "/opt/formrelay/venv/bin/formrelay"
ETC = "/etc/formrelay"
STATE = "/var/lib/formrelay"  # StateDirectory=formrelay

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> (key, value) in order; comments, blanks and continuations as systemd."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"not a unit line: {line!r}"
        current.append((key.strip(), value.strip()))
    return sections


def read_unit(name: str) -> Unit:
    return parse_unit((UNIT_DIR / name).read_text())


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: Unit, section: str, key: str) -> str:
    """The effective value of a single-valued key: the last assignment."""
    found = values(unit, section, key)
    assert found, f"[{section}] {key}= is not set"
    return found[-1]


def parse_env_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile= format, for the forms the example uses."""
    env: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        name, sep, val = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), f"bad line: {line!r}"
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
            val = val[1:-1]
        env[name] = val
    return env


@dataclass(frozen=True)
class Process:
    argv: list[str]
    env: dict[str, str]
    credentials: Path
    cwd: Path


def service_process(unit_name: str, instance: str, etc: Path, runtime: Path,
                    formrelay_bin: str) -> Process:
    """What systemd would run for `unit_name` (a template takes `instance`).

    `etc` stands in for /etc/formrelay, `runtime` holds the credentials and state
    directories, and `formrelay_bin` stands in for /opt/formrelay/venv/bin/formrelay.
    It runs as the caller, not User= (the test venv's Python may be private to it).
    """
    unit = read_unit(unit_name)
    full_name = unit_name.replace("@.", f"@{instance}.") if "@." in unit_name else unit_name
    creds = runtime / "credentials" / full_name
    creds.mkdir(parents=True, mode=0o700)
    state = runtime / "state"
    state.mkdir(mode=0o700, exist_ok=True)

    def expand(text: str) -> str:
        text = text.replace("%i", instance).replace("%d", str(creds)).replace("%S", "/var/lib")
        text = text.replace(ETC, str(etc)).replace(STATE, str(state))
        return text.replace(INSTALLED_BIN, formrelay_bin)

    for spec in values(unit, "Service", "LoadCredential"):
        name, _, source = spec.partition(":")
        shutil.copyfile(expand(source), creds / name)
        (creds / name).chmod(0o400)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "CREDENTIALS_DIRECTORY": str(creds), "LANG": "C.UTF-8"}
    for line in values(unit, "Service", "Environment"):
        for assignment in shlex.split(line):
            name, _, val = assignment.partition("=")
            env[name] = expand(val)
    for spec in values(unit, "Service", "EnvironmentFile"):
        optional = spec.startswith("-")
        path = Path(expand(spec.lstrip("-")))
        if optional and not path.exists():
            continue
        env.update(parse_env_file(path.read_text()))
    argv = shlex.split(expand(value(unit, "Service", "ExecStart")))
    cwd = Path(expand(value(unit, "Service", "WorkingDirectory")))
    return Process(argv, env, creds, cwd)

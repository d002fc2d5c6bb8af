"""The lock files: every dependency pinned, past its floor, with hashes, and installed from.

requirements.lock (the image's) and requirements-dev.lock (bootstrap's .venv, CI) are
written by `make lock` (pip-compile --generate-hashes) from pyproject.toml.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
RUNTIME, DEV = ROOT / "requirements.lock", ROOT / "requirements-dev.lock"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")

# The floors the issue and the advisories ask for (README, "Dependencies").
ADVISORY_FLOORS = {"jinja2": "3.1.6", "requests": "2.32.4", "urllib3": "2.6.3",
                   "flask": "3.1.1", "werkzeug": "3.1.5", "waitress": "3.0.1",
                   "pillow": "12.1.1", "mysql-connector-python": "9.1.0"}


def pins(lock: Path) -> dict[str, tuple[Version, list[str]]]:
    """name -> (version, hashes) for each requirement of a pip-compile lock."""
    found: dict[str, tuple[Version, list[str]]] = {}
    name = ""
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match[1])
            assert name not in found, f"{lock.name}: {name} pinned twice"
            found[name] = (Version(match[2]), [])
        elif line.strip().startswith("--hash=") and name:
            algo, _, digest = line.strip().removeprefix("--hash=").rstrip(" \\").partition(":")
            assert algo == "sha256" and re.fullmatch(r"[0-9a-f]{64}", digest), line
            found[name][1].append(digest)
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{lock.name}: unexpected line {line!r}")
    return found


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("lock,extras", [(RUNTIME, ()), (DEV, ("dev",))])
def test_the_lock_covers_pyproject_with_hashes(lock, extras):
    locked = pins(lock)
    wanted = [Requirement(r) for r in project()["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project()["optional-dependencies"][extra]]
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in locked, f"{lock.name} does not pin {req.name}"
        assert req.specifier.contains(locked[name][0], prereleases=True), (
            f"{lock.name}: {name}=={locked[name][0]} does not satisfy {req}")
    for name, (version, hashes) in locked.items():
        assert hashes, f"{lock.name}: {name}=={version} has no hash"


def test_the_two_locks_agree_and_dev_holds_all_of_runtime():
    runtime, dev = pins(RUNTIME), pins(DEV)
    for name, (version, hashes) in runtime.items():
        assert name in dev and dev[name][0] == version, f"{name}: runtime and dev locks differ"
        assert set(hashes) == set(dev[name][1]), f"{name}: hashes differ between the locks"


def test_floors_are_past_the_known_advisories():
    declared = {canonicalize_name(Requirement(r).name): Requirement(r).specifier
                for r in project()["dependencies"]}
    locked = pins(RUNTIME)
    for name, floor in ADVISORY_FLOORS.items():
        assert name in declared, f"pyproject.toml declares no floor for {name}"
        lows = [Version(s.version) for s in declared[name] if s.operator in (">=", "==", "~=")]
        assert lows and max(lows) >= Version(floor), (
            f"{name}: the floor {declared[name]} admits versions before {floor}")
        assert locked[name][0] >= Version(floor)


def test_image_and_bootstrap_install_from_the_locks_with_hashes():
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    assert re.search(r"COPY requirements\.lock ", dockerfile)
    assert re.search(r"pip install --require-hashes --no-deps -r requirements\.lock", dockerfile)
    assert re.search(r"pip install --no-deps \.", dockerfile)
    assert "requirements.lock" not in (ROOT / ".dockerignore").read_text()
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "lock=requirements-dev.lock" in bootstrap
    assert re.search(r'pip install --quiet --require-hashes --no-deps -r "\$lock"', bootstrap)
    assert re.search(r"pip install --quiet --no-deps -e \.", bootstrap)
    assert not re.search(r"pip install[^\n]*'\.\[dev\]'", bootstrap), "installs unlocked"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lock: ##", makefile, re.M) and "--generate-hashes" in makefile


@pytest.mark.parametrize("python", ["3.11.0", "3.11.2", "3.11.14"])
def test_the_runtime_lock_is_complete_on_every_python_3_11(python):
    """pip-compile resolves for the Python it runs on: a dependency needed only on an older
    3.11 (redis' async-timeout below 3.11.3, and Debian 12 ships 3.11.2) must still be locked,
    or `pip install --require-hashes` there fails."""
    locked = pins(RUNTIME)
    env = {"python_full_version": python, "python_version": "3.11", "extra": ""}
    for name in locked:
        for raw in metadata.requires(name) or []:
            req = Requirement(raw)
            if req.marker is None or req.marker.evaluate(env):
                assert canonicalize_name(req.name) in locked, (
                    f"{name} needs {req} on Python {python}; requirements.lock lacks it")

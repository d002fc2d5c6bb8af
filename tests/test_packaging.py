"""The wheel `pip install .` builds (as the Docker image does) holds the whole sidecar."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    (path,) = out.glob("formrelay-*.whl")
    return path


def test_the_wheel_contains_every_module_and_the_schema(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "sidecar").rglob("*.py")
               if "__pycache__" not in p.parts}
    assert modules and modules <= names, sorted(modules - names)
    schema = {f"sidecar/schema_sql/{p.name}" for p in (ROOT / "wp_bridge_plugin" / "schema")
              .glob("*.sql")}
    assert schema and schema <= names
    templates = {f"sidecar/templates/{p.relative_to(ROOT / 'templates')}"
                 for p in (ROOT / "templates").rglob("*") if p.is_file()}
    assert templates and templates <= names, sorted(templates - names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "formrelay = sidecar.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_an_installed_sidecar_finds_its_default_templates(wheel, tmp_path):
    """Not a checkout: the wheel's files alone (FORMRELAY_TEMPLATES_DIR unset) find them."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = ("import sidecar.config as c; "
             f"assert c.DEFAULT_TEMPLATES.is_relative_to({str(site)!r}), c.DEFAULT_TEMPLATES; "
             "print(sorted(p.name for p in c.DEFAULT_TEMPLATES.iterdir()))")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": str(site)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip() == str(sorted(p.name for p in (ROOT / "templates").iterdir()))

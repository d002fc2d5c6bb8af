"""Retention's facts (sidecar.retention), its settings, and file removal's guards
(sidecar.file_removal.unlink_checked) on files in a temporary directory."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from devstack.samples import write_pdf
from sidecar import config
from sidecar.errors import ConfigError
from sidecar.file_checks import CheckedFile, FilePolicy, check_file
from sidecar.file_removal import SWAPPED, Removal, unlink_checked
from sidecar.retention import Retention, values_kept

pytestmark = pytest.mark.unit
ENDED = datetime(2026, 12, 5, 10, 0)
WINDOWS = Retention(keep_snapshot_days=7, keep_completed_days=30, keep_failed_days=30)


@pytest.mark.parametrize(("status", "until", "setting"), [
    ("failed", datetime(2027, 1, 4, 10, 0), "FORMRELAY_KEEP_FAILED_DAYS"),
    ("cancelled", datetime(2027, 1, 4, 10, 0), "FORMRELAY_KEEP_FAILED_DAYS"),
    ("completed", datetime(2026, 12, 12, 10, 0), "FORMRELAY_KEEP_SNAPSHOT_DAYS"),
])
def test_an_ended_job_keeps_its_values_for_its_window(status, until, setting):
    kept = values_kept(WINDOWS, status, ENDED, None)
    assert kept == {"kept_until": until, "dropped_at": None, "setting": setting,
                    "days": 30 if setting.endswith("FAILED_DAYS") else 7}


@pytest.mark.parametrize("status", ["pending", "retrying", "processing"])
def test_a_job_not_ended_keeps_its_values_with_no_date(status):
    assert values_kept(WINDOWS, status, ENDED, None) == {
        "kept_until": None, "dropped_at": None, "setting": None, "days": None}


def test_dropped_values_say_when_and_no_longer_when_they_will_go():
    dropped = datetime(2027, 1, 4, 10, 17)
    kept = values_kept(WINDOWS, "failed", ENDED, dropped)
    assert (kept["kept_until"], kept["dropped_at"]) == (None, dropped)


def test_the_retention_settings_and_their_defaults():
    env = {"WORDPRESS_DB_USER": "u", "WORDPRESS_DB_NAME": "d"}
    cfg = config.load("status", env)
    assert Retention.from_config(cfg) == Retention(7, 30, 30, False)
    cfg = config.load("status", {**env, "FORMRELAY_KEEP_FAILED_DAYS": "90",
                                 "FORMRELAY_DELETE_DELIVERED_FILES": "on"})
    assert (cfg.keep_failed_days, cfg.delete_delivered_files) == (90, True)
    for off in ("off", "false", "0", "no", "OFF"):
        assert not config.load("status", {**env, "FORMRELAY_DELETE_DELIVERED_FILES": off}
                               ).delete_delivered_files
    with pytest.raises(ConfigError) as bad:
        config.load("status", {**env, "FORMRELAY_KEEP_FAILED_DAYS": "0",
                               "FORMRELAY_DELETE_DELIVERED_FILES": "sometimes"})
    assert bad.value.problems == [
        "FORMRELAY_KEEP_FAILED_DAYS must be between 1 and 3650 (got '0')",
        "FORMRELAY_DELETE_DELIVERED_FILES must be on or off (true/false, yes/no, 1/0)"
        " (got 'sometimes')"]


# ---- unlink_checked: only the very file that was checked --------------------------------

@pytest.fixture
def uploads(tmp_path: Path) -> Path:
    (tmp_path / "uploads" / "wpforms" / "12-abc").mkdir(parents=True)
    return (tmp_path / "uploads").resolve()


def checked(uploads: Path, name: str = "scan.pdf") -> CheckedFile:
    path = uploads / "wpforms" / "12-abc" / name
    write_pdf(path)
    return check_file(path, uploads, FilePolicy())


def test_the_checked_file_is_removed_and_nothing_else(uploads):
    found = checked(uploads)
    neighbour = checked(uploads, "other.pdf")
    assert found.ino == os.stat(found.path).st_ino
    assert unlink_checked(uploads, found) == Removal(True)
    assert not found.path.exists() and neighbour.path.exists()
    assert unlink_checked(uploads, found) == Removal(False, "the file is gone already")


def test_a_file_replaced_by_another_with_the_same_name_is_left(uploads):
    found = checked(uploads)
    swapped = found.path.with_name("new.pdf")
    swapped.write_bytes(b"other")
    os.replace(swapped, found.path)
    assert unlink_checked(uploads, found) == Removal(False, SWAPPED)
    assert found.path.read_bytes() == b"other"


def test_a_file_replaced_by_a_symlink_is_left_and_its_target_too(uploads, tmp_path):
    found = checked(uploads)
    target = tmp_path / "elsewhere.pdf"
    target.write_bytes(b"keep me")
    found.path.unlink()
    found.path.symlink_to(target)
    assert unlink_checked(uploads, found) == Removal(False, SWAPPED)
    assert found.path.is_symlink() and target.read_bytes() == b"keep me"


def test_a_folder_on_the_way_replaced_by_a_symlink_is_not_followed(uploads, tmp_path):
    found = checked(uploads)
    outside = tmp_path / "outside"
    folder = uploads / "wpforms" / "12-abc"
    folder.rename(outside)  # the same inode, now reached through a symlink
    folder.symlink_to(outside)
    removal = unlink_checked(uploads, found)
    assert removal == Removal(False, "the file's directory changed since the check")
    assert (outside / "scan.pdf").exists()


def test_a_file_outside_uploads_or_not_checked_is_never_touched(uploads, tmp_path):
    found = checked(uploads)
    assert unlink_checked(tmp_path / "missing", found) == Removal(
        False, "the uploads directory does not exist")
    other_root = tmp_path / "other"
    other_root.mkdir()
    assert unlink_checked(other_root, found) == Removal(
        False, "the file is not inside the uploads directory")
    assert unlink_checked(uploads, replace(found, ino=0)) == Removal(
        False, "the checked file is not known")
    assert found.path.exists()

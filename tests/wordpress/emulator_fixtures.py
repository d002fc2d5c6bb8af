"""Fixtures for tests of the WPForms emulator (import them into the test module).

- ``emulator_site``: one WordPress for the module with only the emulator
  active (Pro mode), taken down afterwards (logs kept in artifacts/ on failure).
- ``recorder``: a hook recorder for one test. A must-use plugin in the site
  records every ``wpforms_*`` action and filter fired by requests that carry
  its token header, with all their arguments, one JSON line per call, in the
  order they fire, and (as ``probe:...``) the fields a filter on
  wpforms_process_after_filter at PHP_INT_MAX - 1 gets. Submit with
  ``recorder.session`` and read ``recorder.calls()``.
- ``lite_mode`` / ``strict_file_types``: switch the emulator for one test and back.
- ``no_emulator_php_notices`` (autouse): fails a test after which debug.log
  gained a PHP notice, warning, deprecation or error from the emulator's files.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack import wpforms
from devstack.wordpress import LocalWordPress, php_literal
from tests.wordpress.conftest import running_site

__all__ = [
    "HookRecording",
    "emulator_site",
    "lite_mode",
    "no_emulator_php_notices",
    "recorder",
    "strict_file_types",
]

RECORDER_HEADER = "X-Hook-Recorder"

_RECORDER_PHP = r"""<?php
/**
 * Plugin Name: FormRelay tests: WPForms hook recorder
 * Description: Written by tests/wordpress/emulator_fixtures.py. Records every wpforms_* hook
 *              (actions and filters, with all their arguments) fired by a request that
 *              carries the X-Hook-Recorder header.
 */
$fr_hook_token = (string) ( $_SERVER['HTTP_X_HOOK_RECORDER'] ?? '' );
if ( preg_match( '/^[a-f0-9]{32}$/', $fr_hook_token ) ) {
	$fr_hook_log = __RECORD_DIR__ . '/hooks-' . $fr_hook_token . '.jsonl';
	add_action(
		'all',
		static function ( ...$args ) use ( $fr_hook_log ) {
			$hook = (string) $args[0];
			if ( 0 !== strncmp( $hook, 'wpforms_', 8 ) ) {
				return;
			}
			$params = array_slice( $args, 1 );
			$line   = wp_json_encode(
				array(
					'hook'  => $hook,
					'argc'  => count( $params ),
					'types' => array_map( 'gettype', $params ),
					'args'  => $params,
				)
			);
			file_put_contents( $fr_hook_log, $line . "\n", FILE_APPEND | LOCK_EX );
		}
	);
	// What a filter just before PHP_INT_MAX gets back: the files must not have moved yet.
	add_filter(
		'wpforms_process_after_filter',
		static function ( $fields ) use ( $fr_hook_log ) {
			$line = wp_json_encode(
				array(
					'hook'  => 'probe:wpforms_process_after_filter@PHP_INT_MAX-1',
					'argc'  => 1,
					'types' => array( gettype( $fields ) ),
					'args'  => array( $fields ),
				)
			);
			file_put_contents( $fr_hook_log, $line . "\n", FILE_APPEND | LOCK_EX );
			return $fields;
		},
		PHP_INT_MAX - 1
	);
}
unset( $fr_hook_token );
"""

# A PHP diagnostic in debug.log: "[date] PHP Warning:  Undefined ... in /path/x.php on line 3".
_PHP_DIAGNOSTIC = re.compile(r"PHP (Notice|Warning|Deprecated|Fatal error|Parse error|Error)")


@pytest.fixture(scope="module")
def emulator_site(request: pytest.FixtureRequest) -> Iterator[LocalWordPress]:
    """A WordPress with only the WPForms emulator active, for one test module."""
    with running_site(request, plugins=[wpforms.plugin()]) as wp:
        record_dir = wp.dir / "hook-records"
        record_dir.mkdir()
        mu_plugins = wp.wp_content_dir / "mu-plugins"
        mu_plugins.mkdir(exist_ok=True)
        (mu_plugins / "fr-hook-recorder.php").write_text(
            _RECORDER_PHP.replace("__RECORD_DIR__", php_literal(str(record_dir))),
            encoding="utf-8",
        )
        yield wp


class HookRecording:
    """The hooks fired by the requests one test sent through ``session``."""

    def __init__(self, record_dir: Path) -> None:
        token = secrets.token_hex(16)
        self.path = record_dir / f"hooks-{token}.jsonl"
        self.session = requests.Session()
        self.session.headers[RECORDER_HEADER] = token

    def calls(self) -> list[dict[str, Any]]:
        """Every recorded call so far: {hook, argc, types, args}, in firing order."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def hooks(self, prefix: str = "wpforms_process") -> list[str]:
        """The names of the recorded hooks that start with ``prefix``, in order."""
        return [c["hook"] for c in self.calls() if c["hook"].startswith(prefix)]

    def only(self, hook: str) -> dict[str, Any]:
        """The one recorded call of ``hook`` (fails unless it fired exactly once)."""
        found = [c for c in self.calls() if c["hook"] == hook]
        assert len(found) == 1, f"{hook} fired {len(found)} times, expected once"
        return found[0]

    def forget(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture
def recorder(emulator_site: LocalWordPress) -> Iterator[HookRecording]:
    rec = HookRecording(emulator_site.dir / "hook-records")
    try:
        yield rec
    finally:
        rec.session.close()


@pytest.fixture
def lite_mode(emulator_site: LocalWordPress) -> Iterator[None]:
    wpforms.set_mode(emulator_site, "lite")
    try:
        yield
    finally:
        wpforms.set_mode(emulator_site, "pro")


@pytest.fixture
def strict_file_types(emulator_site: LocalWordPress) -> Iterator[None]:
    wpforms.set_strict_file_types(emulator_site, True)
    try:
        yield
    finally:
        wpforms.set_strict_file_types(emulator_site, False)


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.fixture(autouse=True)
def no_emulator_php_notices(emulator_site: LocalWordPress) -> Iterator[None]:
    """No PHP diagnostic from the emulator's own files (WordPress 6.1's core has its own)."""
    log = emulator_site.debug_log
    start = _log_size(log)
    yield
    if _log_size(log) <= start:
        return
    with log.open("rb") as fh:
        fh.seek(start)
        text = fh.read().decode("utf-8", "replace")
    ours = (str(wpforms.PLUGIN_DIR), f"/plugins/{wpforms.PLUGIN_SLUG}/")
    bad = [line for line in text.splitlines()
           if _PHP_DIAGNOSTIC.search(line) and any(p in line for p in ours)]
    assert not bad, "PHP diagnostics from the emulator:\n" + "\n".join(bad)

"""Action Scheduler (WordPress' own job queue) as the other side of the side-by-side bench.

Each action does what a FormRelay job does: one JSON record POST and two
multipart document POSTs through `wp_remote_post`, the document ids taken from
the record's answer. The queue is drained by AS's own runner in its fastest
mode, `ActionScheduler_QueueRunner::instance()->run('WP CLI')` in a loop until
it returns 0, from a PHP CLI script that loads wp-load.php (Debian has no
WP-CLI; this is what `wp action-scheduler run` calls).
"""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

from devstack.wordpress import LocalWordPress

SLUG = "action-scheduler"
HOOK = "formrelay_bench_deliver"

# A must-use plugin: the action's callback. A failed step throws, so AS marks the
# action failed and the bench sees fewer records at the simulator than jobs.
CALLBACK_PHP = r"""<?php
/**
 * Plugin Name: FormRelay bench: one Action Scheduler job = a record and its documents
 */
add_action( 'formrelay_bench_deliver', 'formrelay_bench_deliver', 10, 1 );

function formrelay_bench_post( $url, $key, $content_type, $body ) {
	$resp = wp_remote_post( $url, array(
		'timeout' => 30,
		'headers' => array( 'Content-Type' => $content_type, 'Idempotency-Key' => $key ),
		'body'    => $body,
	) );
	if ( is_wp_error( $resp ) || 201 !== wp_remote_retrieve_response_code( $resp ) ) {
		throw new Exception( 'partner refused ' . $url );
	}
	return json_decode( wp_remote_retrieve_body( $resp ), true );
}

function formrelay_bench_deliver( $job ) {
	$key    = 'as-bench-' . $job['n'];
	$record = formrelay_bench_post( $job['api'] . '/patients', $key . '-record',
		'application/json', wp_json_encode( $job['record'] ) );
	$url    = $job['api'] . '/patients/' . rawurlencode( $record['id'] ) . '/documents';
	foreach ( $job['files'] as $i => $path ) {
		$boundary = 'fr' . wp_generate_password( 24, false );
		$body     = "--$boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\""
			. basename( $path ) . "\"\r\nContent-Type: application/pdf\r\n\r\n"
			. file_get_contents( $path ) . "\r\n--$boundary--\r\n";
		formrelay_bench_post( $url, $key . '-doc-' . $i,
			'multipart/form-data; boundary=' . $boundary, $body );
	}
}
"""

ENQUEUE_PHP = r"""
$jobs = json_decode( file_get_contents( $snippet_args[0] ), true );
foreach ( $jobs as $job ) {
	as_enqueue_async_action( 'formrelay_bench_deliver', array( $job ), 'formrelay-bench' );
}
echo count( $jobs );
"""

# AS's CLI runner loop. It may also run AS's own housekeeping actions, so what it
# reports is the bench's hook alone: pending before and after, and failed.
DRAIN_PHP = r"""
function formrelay_bench_count( $status ) {
	return count( as_get_scheduled_actions( array( 'hook' => 'formrelay_bench_deliver',
		'status' => $status, 'per_page' => -1 ), 'ids' ) );
}
$before = formrelay_bench_count( ActionScheduler_Store::STATUS_PENDING );
$runner = ActionScheduler_QueueRunner::instance();
while ( $runner->run( 'WP CLI' ) > 0 ) {
	continue;
}
echo wp_json_encode( array(
	'ran'    => $before - formrelay_bench_count( ActionScheduler_Store::STATUS_PENDING ),
	'failed' => formrelay_bench_count( ActionScheduler_Store::STATUS_FAILED ),
) );
"""


def unpack(tarball: Path, into: Path) -> Path:
    """The plugin directory of an Action Scheduler release tarball (`git archive` layout)."""
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    found = sorted(p.parent for p in into.rglob("action-scheduler.php"))
    if not found:
        raise SystemExit(f"bench: no action-scheduler.php in {tarball}")
    return found[0]


def install(site: LocalWordPress, plugin_dir: Path) -> str:
    """Activate AS and drop the bench's callback in as a must-use plugin; AS's version."""
    site.activate_plugin(plugin_dir, SLUG, mode="copy")
    mu = site.wp_content_dir / "mu-plugins"
    mu.mkdir(exist_ok=True)
    (mu / "formrelay-bench-as.php").write_text(CALLBACK_PHP, encoding="utf-8")
    return site.php("echo ActionScheduler_Versions::instance()->latest_version();").strip()


def enqueue(site: LocalWordPress, api: str, files: list[Path], count: int, start: int) -> None:
    """`count` pending actions, numbered from `start` (idempotency keys stay unique)."""
    record = {"first_name": "Bench", "last_name": "Jobs", "email": "bench@example.org",
              "date_of_birth": "1970-01-01", "form": "Intake"}
    jobs = [{"n": start + i, "api": api, "record": {**record, "entry": start + i},
             "files": [str(f) for f in files]} for i in range(count)]
    # Through a file: a thousand jobs on the command line pass the kernel's argv limit.
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as listed:
        json.dump(jobs, listed)
        listed.flush()
        out = site.php(ENQUEUE_PHP, listed.name, timeout=300)
    if out.strip() != str(count):
        raise SystemExit(f"bench: enqueueing Action Scheduler actions printed {out[-300:]!r}")


def drain(site: LocalWordPress, timeout: float) -> tuple[int, int]:
    """Run the queue until empty: (the bench's actions run, the bench's actions failed)."""
    out = site.php(DRAIN_PHP, timeout=timeout)
    result = json.loads(out.strip().splitlines()[-1])
    return int(result["ran"]), int(result["failed"])

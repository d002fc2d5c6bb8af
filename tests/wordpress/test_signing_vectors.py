"""The plugin's FormRelay_Signing (run by php-cli) makes exactly the bytes and signatures
of tests/fixtures/signing/*.json, which the sidecar's unit tests check too."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.wordpress.conftest import BRIDGE_SOURCE

pytestmark = pytest.mark.wordpress

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "signing"
VECTORS = sorted(FIXTURES.glob("*.json"))
# Reads the vectors and signs each with the plugin's class; prints name => result.
SCRIPT = r"""
define( 'ABSPATH', '/' );
require $argv[1];
$out = array();
foreach ( glob( $argv[2] . '/*.json' ) as $path ) {
    $case = json_decode( file_get_contents( $path ), true );
    $f    = $case['fields'];
    $k    = $case['secret'];
    if ( FormRelay_Signing::NOTIFY === $case['purpose'] ) {
        $fields    = array( $f['timestamp'], $f['nonce'], $f['body'] );
        $signature = FormRelay_Signing::notify( $k, ...$fields );
    } elseif ( FormRelay_Signing::DOCTOR === $case['purpose'] ) {
        $fields    = array( $f['direction'], $f['timestamp'], $f['nonce'], $f['body'] );
        $signature = FormRelay_Signing::doctor( $k, ...$fields );
    } else {
        $fields    = array( $f['timestamp'], $f['nonce'], $f['method'],
                            $f['path_and_query'], $f['user'], $f['body'] );
        $signature = FormRelay_Signing::admin( $k, ...$fields );
    }
    $out[ basename( $path, '.json' ) ] = array(
        'message'   => FormRelay_Signing::message( $case['purpose'], $fields ),
        'signature' => $signature,
    );
}
$out['_nonces'] = array( FormRelay_Signing::nonce(), FormRelay_Signing::nonce() );
echo json_encode( $out );
"""


@pytest.fixture(scope="module")
def php_results() -> dict:
    proc = subprocess.run(
        ["php", "-r", SCRIPT, str(BRIDGE_SOURCE / "includes" / "class-formrelay-signing.php"),
         str(FIXTURES)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_the_plugin_signs_the_shared_vectors(php_results, path: Path):
    case = json.loads(path.read_text(encoding="utf-8"))
    got = php_results[path.stem]
    assert got["message"] == case["message"]
    assert got["signature"] == case["signature"]


def test_the_plugins_nonces_are_128_random_bits_in_hex(php_results):
    first, second = php_results["_nonces"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second

"""Sealed boxes (sidecar/seal.py): keys, the key id, opening, and every refusal naming
what is wrong without a key or a plaintext in it; and PHP's sodium_crypto_box_seal
(what the plugin will call) opened here."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from sidecar import seal
from sidecar.cli import main
from sidecar.errors import ConfigError

pytestmark = pytest.mark.unit

SNAPSHOT = b'{"fields": {"1": {"name": "Name", "value": "Jane Doe"}}}'


def test_a_generated_pair_seals_and_opens_and_its_id_is_the_public_keys_hash():
    pair = seal.generate()
    public = base64.b64decode(pair.public)
    assert pair.key_id == seal.key_id(public) and len(pair.key_id) == 16
    assert pair.private not in repr(pair)
    key, box = seal.seal(pair.public, SNAPSHOT)
    assert key == pair.key_id and SNAPSHOT not in box
    assert seal.seal(pair.public, SNAPSHOT)[1] != box  # an ephemeral key per message
    opener = seal.Opener.parse(pair.private)
    assert opener.open(key, box) == SNAPSHOT
    assert opener.public_of(key) == pair.public and opener.newest == key


def test_several_keys_open_each_their_own_and_an_unknown_id_is_named():
    old, new = seal.generate(), seal.generate()
    opener = seal.Opener.parse(f"{new.private}, {old.private}")
    assert opener.newest == new.key_id
    for pair in (old, new):
        assert opener.open(*seal.seal(pair.public, SNAPSHOT)) == SNAPSHOT
    stranger = seal.generate()
    with pytest.raises(seal.UnknownKey) as caught:
        opener.open(*seal.seal(stranger.public, SNAPSHOT))
    assert stranger.key_id in str(caught.value) and caught.value.key_id == stranger.key_id


def test_a_damaged_box_is_refused_without_its_content():
    pair = seal.generate()
    key, box = seal.seal(pair.public, SNAPSHOT)
    with pytest.raises(seal.NotOpened) as caught:
        seal.Opener.parse(pair.private).open(key, box[:-1] + bytes([box[-1] ^ 1]))
    assert key in str(caught.value) and "Jane" not in str(caught.value)


@pytest.mark.parametrize(("text", "says"), [
    ("not base64!", "key 2 is not base64 (as `formrelay keys generate` prints it)"),
    (base64.b64encode(b"short").decode(), "key 2 must be 32 bytes in base64, got 5"),
])
def test_a_bad_private_key_is_named_by_position_never_quoted(text, says):
    good = seal.generate().private
    with pytest.raises(ConfigError) as caught:
        seal.Opener.parse(f"{good},{text}")
    assert caught.value.problems == [f"FORMRELAY_SEAL_PRIVATE_KEYS, {says}"]
    assert good not in str(caught.value) and text not in str(caught.value)


def test_formrelay_keys_generate_prints_a_pair_that_works(capsys):
    assert main(["keys", "generate"]) == 0
    out = capsys.readouterr().out
    public = out.split("FORMRELAY_SEAL_PUBLIC_KEY', '")[1].split("'")[0]
    private = out.strip().splitlines()[-1].strip()
    assert seal.Opener.parse(private).open(*seal.seal(public, SNAPSHOT)) == SNAPSHOT
    assert f"key id: {seal.key_id(base64.b64decode(public))}" in out


@pytest.mark.skipif(shutil.which("php") is None, reason="PHP is not installed")
def test_what_php_sodium_crypto_box_seal_writes_opens_here():
    pair = seal.generate()
    php = ("echo base64_encode(sodium_crypto_box_seal(stream_get_contents(STDIN),"
           " base64_decode($argv[1])));")
    done = subprocess.run(["php", "-r", php, pair.public], input=SNAPSHOT,
                          capture_output=True, timeout=60, check=True)
    box = base64.b64decode(done.stdout)
    assert seal.Opener.parse(pair.private).open(pair.key_id, box) == SNAPSHOT


def test_the_private_keys_come_from_the_setting_or_its_file_and_a_bad_one_is_not_quoted(
        tmp_path):
    from sidecar import config

    new, old = seal.generate(), seal.generate()
    base = {"WORDPRESS_DB_USER": "wp", "WORDPRESS_DB_NAME": "wp"}
    keys = tmp_path / "seal_private_keys"
    keys.write_text(f"{new.private},{old.private}\n")
    cfg = config.load("keys", {**base, "FORMRELAY_SEAL_PRIVATE_KEYS_FILE": str(keys)})
    opener = seal.Opener.from_config(cfg)
    assert (opener.newest, opener.on) == (new.key_id, True)
    assert opener.public_of(old.key_id) == old.public
    assert new.private not in repr(cfg)
    assert not seal.Opener.from_config(config.load("keys", base)).on  # none: sealing off
    with pytest.raises(ConfigError) as err:
        config.load("keys", {**base, "FORMRELAY_SEAL_PRIVATE_KEYS": f"{new.private},c2hvcnQ="})
    (problem,) = err.value.problems
    assert "key 2 must be base64 of 32 bytes" in problem and "c2hvcnQ" not in problem
    assert new.private not in problem


def test_a_document_place_round_trips_sealed_and_stays_as_given_without_a_key():
    pair = seal.generate()
    opener = seal.Opener([base64.b64decode(pair.private)])
    name, path, key = opener.seal_place("Jane Doe.pdf", "/up/wpforms/1-a/Jane-Doe-x.pdf")
    assert (name, key) == ("", pair.key_id) and "Jane" not in path
    assert opener.open_place(key, name, path) == ("Jane Doe.pdf", "/up/wpforms/1-a/Jane-Doe-x.pdf")
    assert opener.open_place(key, "", "") == ("", "")  # blanked by retention
    assert seal.Opener([]).seal_place("a.pdf", "/p/a.pdf") == ("a.pdf", "/p/a.pdf", None)
    with pytest.raises(seal.NotOpened):
        opener.open_place(key, "", "not base64!")
    with pytest.raises(seal.UnknownKey):
        seal.Opener([]).open_snapshot(key, path)

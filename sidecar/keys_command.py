"""`formrelay keys generate`: a new key pair for sealed submissions (sidecar/seal.py).

It prints the public half as the wp-config.php line and the private half for the
sidecar's secret store, and nothing else: this is the one command whose output is a
secret, so it writes nowhere on disk and a redirect is the operator's choice.
"""

from __future__ import annotations

import argparse

from sidecar import config, seal

HELP = "sealed submissions: `generate` prints a new key pair (public for wp-config.php)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("generate",),
                        help="generate: a new X25519 key pair")


def run(cfg: config.Config, args: argparse.Namespace) -> int:
    pair = seal.generate()
    print(f"key id: {pair.key_id}")
    print("public key, for WordPress (wp-config.php):")
    print(f"  define( 'FORMRELAY_SEAL_PUBLIC_KEY', '{pair.public}' );")
    print("private key, for the sidecar's secret store only (FORMRELAY_SEAL_PRIVATE_KEYS,"
          " newest first, commas between keys):")
    print(f"  {pair.private}")
    return 0

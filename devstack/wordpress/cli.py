"""A throwaway local WordPress without Docker.

``python -m devstack.wordpress up`` brings a site up and prints its details as
JSON (the server keeps running after the command returns); ``down`` stops it,
drops its database and removes its directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from .config import PluginSpec, default_dir
from .errors import WordPressError
from .installer import SLUG_RE
from .php import PHPValue
from .site import LocalWordPress


def _parse_define(text: str, as_json: bool) -> tuple[str, PHPValue]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    if not as_json:
        return name, value
    parsed = json.loads(value)
    if not isinstance(parsed, (str, int, float, bool)) and parsed is not None:
        raise argparse.ArgumentTypeError(f"{name}: only scalar JSON values are allowed")
    return name, parsed


def _parse_plugin_arg(text: str) -> PluginSpec:
    slug, sep, path = text.partition("=")
    if sep and SLUG_RE.match(slug):
        return (slug, path)
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.wordpress", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="create, serve and install a site; print JSON")
    up.add_argument("--name", help="site name (default: random); dir defaults to var/wp-<name>")
    up.add_argument("--dir", help="site directory (must be empty or absent)")
    up.add_argument("--db-name", help="database to create (default fr_wp_<random>); must not exist")
    up.add_argument("--table-prefix", default="wp_")
    up.add_argument("--db-host", default="127.0.0.1")
    up.add_argument("--db-port", type=int, default=3306)
    up.add_argument("--db-user", default="root")
    up.add_argument("--db-password", default="")
    up.add_argument("--port", type=int, help="HTTP port (default: a free one)")
    up.add_argument("--admin-user", default="admin")
    up.add_argument("--admin-password", help="default: random")
    up.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="[SLUG=]PATH",
        help="plugin source directory to activate (repeatable)",
    )
    up.add_argument("--plugin-mode", choices=("symlink", "copy"), default="symlink")
    up.add_argument(
        "--define",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="string constant for wp-config.php",
    )
    up.add_argument(
        "--define-json",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='typed constant (true, 3, null, "s")',
    )
    up.add_argument(
        "--permalinks", default="/%postname%/", help="permalink structure ('' for plain)"
    )
    up.add_argument(
        "--foreground",
        action="store_true",
        help="stay in the foreground; Ctrl-C takes the site down",
    )

    down = sub.add_parser(
        "down", help="stop a site started by `up`, drop its database, remove its dir"
    )
    where = down.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir")
    where.add_argument("--name")
    down.add_argument(
        "--keep", action="store_true", help="only stop the server; keep database and files"
    )
    return parser


def _up(args: argparse.Namespace) -> int:
    constants = dict(_parse_define(d, False) for d in args.define)
    constants.update(_parse_define(d, True) for d in args.define_json)
    wp = LocalWordPress(
        args.name,
        dir=args.dir,
        db_name=args.db_name,
        table_prefix=args.table_prefix,
        db_host=args.db_host,
        db_port=args.db_port,
        db_user=args.db_user,
        db_password=args.db_password,
        port=args.port,
        admin_user=args.admin_user,
        admin_password=args.admin_password,
        plugins=[_parse_plugin_arg(p) for p in args.plugin],
        plugin_mode=args.plugin_mode,
        constants=constants,
        permalink_structure=args.permalinks,
    )
    try:
        wp.up()
    except WordPressError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(wp.info(), indent=2), flush=True)
    # Without --foreground the server, in its own session, outlives this process.
    if args.foreground:
        try:
            while wp.is_running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        finally:
            wp.down()
    return 0


def _down(args: argparse.Namespace) -> int:
    wp = LocalWordPress.from_state(args.dir or default_dir(args.name))
    wp.keep = args.keep
    wp.down()
    print(
        json.dumps({"down": wp.name, "dir": str(wp.dir), "db_name": wp.db_name, "kept": args.keep})
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _up(args) if args.command == "up" else _down(args)

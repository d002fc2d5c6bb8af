"""FormRelay's share of a saturated WordPress: Apache + mod_php, 16 concurrent form POSTs.

One WordPress (Debian's 6.1, a scratch MariaDB database) served the way
production serves it (bench/apache.py: Debian's apache2, prefork, mod_php
8.2), the WPForms emulator and the FormRelay Bridge. 16 clients POST real
WPForms submissions (name, e-mail, date, one 3,000-byte PDF) back to back, each
on its own keep-alive connection, in four arms:

  (a) none      the bridge inactive;
  (a') none     the same again: the A/A pair whose difference is the noise floor;
  (b) capture   the bridge active, the sidecar stopped (notify refused at once);
  (c) delivery  the bridge active, `formrelay web` + `formrelay worker` (Redis, the
                sidecar's default partner ceilings unless --no-ceilings) delivering to
                `formrelay partner-sim` (0 ms) on the same cores. One simulator serves
                the whole run (idle outside (c)), so a record made in one round gets its
                documents in the next; web and worker start and stop with the arm, and
                the block starts once the jobs (b) left behind are delivered (or after
                --drain-seconds, with ceilings that pace them), so neither the sidecar's
                start nor that backlog is in the measured block.

The arms alternate in rounds (the machine's drift spreads over all of them); the
first POSTs of each block (one per client) warm it and are not counted. Prints
each arm's POST median and p95, the noise floor ((a')-(a))/(a) and FormRelay's
share ((b)-(a))/(a) and ((c)-(a))/(a). Target: both < 5%.
FORMRELAY_BENCH_PROFILE=DIR profiles the worker.

    .venv/bin/python bench/load.py [--quick] [--rounds R] [--per-block N] [--clients 16]
        [--no-ceilings] [--drain-seconds S]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.apache import INSTALL_HINT, RUN_AS, apache, available
from bench.cpu_usage import (
    Probe,
    group_seconds,
    pid_seconds,
    pids_of,
    snapshot,
    tree_seconds,
    used,
)
from bench.formrelay_side import NO_CEILINGS, FormRelaySide
from bench.site_env import bridge_site, db_settings, run_bench
from bench.submit_overhead import set_bridge
from bench.throughput import FORMRELAY, BenchError, alive, base_env, service
from devstack import wpforms
from devstack.samples import write_pdf
from devstack.wordpress import LocalWordPress, free_port, php_literal

ARMS = ("none", "none'", "capture", "delivery")
BRIDGE_OFF = ("none", "none'")
# A must-use plugin: per front-end POST, the SQL statements WordPress sent ($wpdb, the
# bridge's included) and the PHP time from the request's start to the end of shutdown.
QUERIES_PHP = r"""<?php
/* Plugin Name: FormRelay bench: SQL statements and PHP time per POST (bench/load.py) */
if ( 'POST' === ( $_SERVER['REQUEST_METHOD'] ?? '' ) ) {
	add_action( 'shutdown', static function () {
		global $wpdb;
		$ms = ( microtime( true ) - $_SERVER['REQUEST_TIME_FLOAT'] ) * 1000;
		file_put_contents( __LOG__, $wpdb->num_queries . ' ' . round( $ms, 2 ) . "\n",
			FILE_APPEND | LOCK_EX );
	}, PHP_INT_MAX );
}
"""
TARGET = 0.05


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def block(url: str, form_id: int, doc: Path, clients: int, posts: int) -> list[float]:
    """`posts` counted POSTs (plus one warm-up per client), `clients` at a time; ms each."""
    left = [posts + clients]
    lock = threading.Lock()
    times: list[float] = []
    errors: list[str] = []

    def client(n: int) -> None:
        with requests.Session() as session:
            warm = True
            while True:
                with lock:
                    if left[0] <= 0 or errors:
                        return
                    left[0] -= 1
                try:
                    sent = wpforms.submit(url, form_id, {"1": {"first": "Load", "last": f"C{n}"},
                                                         "2": "load@example.org",
                                                         "3": "1970-01-01"},
                                          files={"4": [doc]}, session=session, timeout=120)
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                    return
                if not warm:
                    with lock:
                        times.append(sent.elapsed_s * 1000)
                warm = False

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"a submission failed: {errors[0]}")
    return times


@dataclass
class Arm:
    name: str
    times: list[float] = field(default_factory=list)  # counted POSTs, ms
    posts: int = 0  # every POST, warm-ups included (the CPU figures are per POST)
    cpu: dict[str, float] = field(default_factory=dict)  # seconds by process group
    php: list[tuple[int, float]] = field(default_factory=list)  # (SQL statements, PHP ms)

    def add(self, times: list[float], posts: int, cpu: dict[str, float],
            php: list[tuple[int, float]]) -> None:
        self.times += times
        self.posts += posts
        self.php += php
        for group, seconds in cpu.items():
            self.cpu[group] = self.cpu.get(group, 0.0) + seconds


def sim_process(logs: Path) -> Any:
    """`formrelay partner-sim` at 0 ms; yields (process, root URL)."""
    argv = [FORMRELAY, "partner-sim", "--listen", "127.0.0.1:0", "--threads", "64"]
    return service("sim", argv, base_env(), logs, "partner-sim serving")


@contextmanager
def arm(name: str, site: LocalWordPress, fr: FormRelaySide, sim_root: str,
        drain_seconds: float) -> Iterator[dict[str, Probe]]:
    """The bridge and the sidecar as arm `name` has them; yields CPU probes of the sidecar.

    For delivery, once the backlog the capture arm left is delivered (at most
    `drain_seconds`: with the default ceilings it is paced at 10 requests/s).
    """
    set_bridge(site, name not in BRIDGE_OFF)
    if name != "delivery":
        yield {}
        return
    with fr.web(sim_root) as web, fr.worker(sim_root) as worker:
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline and fr.waiting():
            alive(worker, fr.logs / "worker.log")
            time.sleep(0.2)  # a poll, not a synchronisation: the block starts either way
        yield {"formrelay web": partial(tree_seconds, web.pid),
               "formrelay worker": partial(tree_seconds, worker.pid)}


def php_lines(log: Path, offset: int) -> list[tuple[int, float]]:
    with log.open("rb") as fh:
        fh.seek(offset)
        return [(int(q), float(ms)) for q, ms in (line.split() for line in fh.read().decode()
                                                   .splitlines() if line.strip())]


def run(args: argparse.Namespace, tmp: Path) -> tuple[list[Arm], dict[str, int]]:
    site, secret, listen = bridge_site("load", {"WP_DEBUG": False}, **db_settings())
    port = free_port()
    doc = write_pdf(tmp / "scan.pdf", 3000)
    arms = {a: Arm(a) for a in ARMS}
    with site:
        form_id = wpforms.create_form(site, "Load", fields=[
            wpforms.name_field(1), wpforms.email_field(2), wpforms.text_field(3, "Date"),
            wpforms.file_field(4)])
        fr = FormRelaySide(site, form_id, secret, listen, tmp / "logs", tmp / "data",
                           ceilings=dict(NO_CEILINGS) if args.no_ceilings else {})
        mu = site.wp_content_dir / "mu-plugins"
        mu.mkdir(exist_ok=True)
        php_log = site.dir / "bench-php.log"
        php_log.touch()
        shutil.chown(php_log, RUN_AS, RUN_AS)
        (mu / "formrelay-bench-queries.php").write_text(
            QUERIES_PHP.replace("__LOG__", php_literal(str(php_log))), encoding="utf-8")
        # One simulator for the whole run: records made in one round get documents in the next.
        with apache(site, port) as (url, apache_pid), sim_process(tmp / "logs") as (sim, text):
            found = re.search(r"control: (\S+)/_sim/", text)
            if not found:
                raise BenchError("partner-sim did not print its address")
            common: dict[str, Probe] = {"apache + mod_php": partial(group_seconds, apache_pid),
                                        "partner-sim": partial(pid_seconds, sim.pid),
                      "mariadbd": partial(pid_seconds, *pids_of("mariadbd")),
                      "redis-server": partial(pid_seconds, *pids_of("redis-server")),
                      "load client": lambda: sum(os.times()[:2])}
            # Apache grows from 5 children to one per client, opcache fills: not counted.
            block(url, form_id, doc, args.clients, 4 * args.clients)
            for r in range(args.rounds):
                for name in ARMS if r % 2 == 0 else ARMS[::-1]:
                    with arm(name, site, fr, found.group(1), args.drain_seconds) as own:
                        probes: dict[str, Probe] = {**common, **own}
                        before, offset = snapshot(probes), php_log.stat().st_size
                        times = block(url, form_id, doc, args.clients, args.per_block)
                        arms[name].add(times, args.per_block + args.clients,
                                       used(before, snapshot(probes)),
                                       php_lines(php_log, offset))
        counts = fr.counts()
        if counts.get("failed"):
            print(f"failed FormRelay steps by error: {fr.failures()}")
    return list(arms.values()), counts


def report(arms: list[Arm], counts: dict[str, int], clients: int) -> None:
    print(f"WordPress 6.1 under Apache 2.4 + mod_php 8.2 (prefork), {clients} concurrent"
          " WPForms POSTs (one 3,000-byte PDF each)")
    print("arm        POSTs  median ms   p95 ms")
    for a in arms:
        print(f"{a.name:<9} {len(a.times):>6} {statistics.median(a.times):>10.1f}"
              f" {p95(a.times):>8.1f}")
    base = arms[0]
    base_med, base_p95 = statistics.median(base.times), p95(base.times)

    def share(a: Arm) -> tuple[float, float]:
        return ((statistics.median(a.times) - base_med) / base_med,
                (p95(a.times) - base_p95) / base_p95)

    med, tail = share(arms[1])
    print(f"noise floor ((a')-(a))/(a), the same arm twice: median {med:+.1%}, p95 {tail:+.1%}")
    print("FormRelay's share, target < 5%:")
    for a, label in ((arms[2], "(b)-(a))/(a) capture only"),
                     (arms[3], "(c)-(a))/(a) with delivery")):
        med, tail = share(a)
        print(f"  ({label}: median {med:+.1%}, p95 {tail:+.1%}"
              f" ({'met' if med < TARGET else 'MISSED'} on the median)")
    groups = sorted({g for a in arms for g in a.cpu}, key=lambda g: -arms[3].cpu.get(g, 0))
    print("where the time goes: CPU ms per POST (mariadbd and redis are shared with other"
          " work on the machine)")
    print(f"{'':<18}" + "".join(f"{a.name:>10}" for a in arms))
    for g in groups:
        print(f"{g:<18}" + "".join(f"{1000 * a.cpu.get(g, 0) / a.posts:>10.2f}" for a in arms))
    total = [1000 * sum(a.cpu.values()) / a.posts for a in arms]
    print(f"{'total':<18}" + "".join(f"{t:>10.2f}" for t in total))
    print(f"{'SQL per POST':<18}" + "".join(
        f"{statistics.mean(q for q, _ in a.php):>10.1f}" for a in arms))
    print(f"{'PHP ms median':<18}" + "".join(
        f"{statistics.median(ms for _, ms in a.php):>10.1f}" for a in arms))
    print(f"FormRelay jobs at the end, by status: {counts}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of short blocks")
    parser.add_argument("--rounds", type=int, help="rounds of the three arms (default 4)")
    parser.add_argument("--per-block", type=int,
                        help="counted POSTs per arm and round (default 320, quick 96)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--no-ceilings", action="store_true",
                        help="lift the worker's partner ceilings in arm (c)")
    parser.add_argument("--drain-seconds", type=float, default=60,
                        help="arm (c) waits up to this long for the capture arm's backlog to"
                        " be delivered before its block (default 60)")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 4)
    args.per_block = args.per_block or (96 if args.quick else 320)
    if not available():
        print(INSTALL_HINT, file=sys.stderr)
        return 2

    def measure() -> tuple[list[Arm], dict[str, int]]:
        with tempfile.TemporaryDirectory(prefix="fr-load-") as tmp:
            (Path(tmp) / "logs").mkdir()
            return run(args, Path(tmp))

    return run_bench(__file__, measure, lambda got: report(*got, args.clients),
                     removed="site, Apache and queue", errors=(BenchError,))


if __name__ == "__main__":
    sys.exit(main())

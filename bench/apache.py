"""A private Apache + mod_php (Debian's apache2, libapache2-mod-php8.2) serving a local site.

The way production serves WordPress: the prefork MPM with Debian's own prefork
and keep-alive settings, PHP as an Apache module reading
/etc/php/8.2/apache2/php.ini (opcache as Debian ships it), WordPress' rewrite
rules. Its own config, pid file and port: the machine's Apache, if any, is not
touched. Children run as www-data, so the site's uploads and debug log are
handed to that user first.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

from devstack.wordpress import LocalWordPress

MODULES = Path("/usr/lib/apache2/modules")
NEEDED = (MODULES / "libphp8.2.so", MODULES / "mod_mpm_prefork.so")
INSTALL_HINT = ("bench/load.py needs Debian's apache2 and libapache2-mod-php8.2: run"
                " `FORMRELAY_WITH_APACHE=1 bash scripts/bootstrap.sh` (as root) or"
                " `apt-get install -y apache2 libapache2-mod-php8.2`")
RUN_AS = "www-data"

CONF = """\
# Written by bench/apache.py for one benchmark run.
ServerRoot "/etc/apache2"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {dir}/apache2.pid
Mutex file:{dir} default
ErrorLog {dir}/error.log
LogLevel warn
User {user}
Group {user}
LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule dir_module {modules}/mod_dir.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule rewrite_module {modules}/mod_rewrite.so
LoadModule php_module {modules}/libphp8.2.so
TypesConfig /etc/mime.types

# Debian's defaults (apache2.conf, mods-available/mpm_prefork.conf).
Timeout 300
KeepAlive On
MaxKeepAliveRequests 100
KeepAliveTimeout 5
StartServers 5
MinSpareServers 5
MaxSpareServers 10
MaxRequestWorkers 150
MaxConnectionsPerChild 0

<FilesMatch ".+\\.ph(?:ar|p|tml)$">
    SetHandler application/x-httpd-php
</FilesMatch>
DocumentRoot "{docroot}"
DirectoryIndex index.php index.html
<Directory "{docroot}">
    Options FollowSymLinks
    AllowOverride None
    Require all granted
    RewriteEngine On
    RewriteBase /
    RewriteRule ^index\\.php$ - [L]
    RewriteCond %{{REQUEST_FILENAME}} !-f
    RewriteCond %{{REQUEST_FILENAME}} !-d
    RewriteRule . /index.php [L]
</Directory>
"""


def available() -> bool:
    return shutil.which("apache2") is not None and all(p.is_file() for p in NEEDED)


def _hand_over(site: LocalWordPress) -> None:
    """What PHP writes under Apache (uploads, the debug log) belongs to www-data."""
    site.uploads_dir.mkdir(parents=True, exist_ok=True)
    site.debug_log.touch()
    targets = [site.debug_log, site.uploads_dir, *site.uploads_dir.rglob("*")]
    for path in targets:
        shutil.chown(path, RUN_AS, RUN_AS)


@contextmanager
def apache(site: LocalWordPress, port: int) -> Iterator[tuple[str, int]]:
    """Serve `site` under Apache on 127.0.0.1:`port` until the block ends.

    Yields its URL and its parent's pid (also its children's process group)."""
    if not available():
        raise SystemExit(INSTALL_HINT)
    conf_dir = site.dir / "apache"
    conf_dir.mkdir(exist_ok=True)
    conf = conf_dir / "apache2.conf"
    conf.write_text(CONF.format(port=port, dir=conf_dir, user=RUN_AS, modules=MODULES,
                                docroot=site.docroot), encoding="utf-8")
    _hand_over(site)
    url = f"http://127.0.0.1:{port}"
    # WP_HOME / WP_SITEURL: the installer insists on php -S's address; links and
    # redirects should name Apache's.
    config = site.docroot / "wp-config.php"
    config.write_text(config.read_text(encoding="utf-8").replace(f"'{site.url}'", f"'{url}'"),
                      encoding="utf-8")
    check = subprocess.run(["apache2", "-f", str(conf), "-t"], capture_output=True, text=True,
                           check=False)
    if check.returncode != 0:
        raise SystemExit(f"bench: apache2 -t refused the config: {check.stderr.strip()}")
    proc = subprocess.Popen(["apache2", "-f", str(conf), "-DFOREGROUND"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_ready(proc, url, conf_dir / "error.log")
        yield url, proc.pid
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SystemExit(f"bench: apache2 exited with {proc.returncode}:\n{tail}")
        try:
            if requests.get(f"{url}/wp-login.php", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)  # polling a starting server
    raise SystemExit(f"bench: Apache did not serve {url}/wp-login.php within 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the parent stops its children too; the group is killed if it lingers."""
    with suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

"""A throwaway local WordPress without Docker.

Debian's ``wordpress`` package (``/usr/share/wordpress``) is laid into a scratch
directory (hard links, so it takes ~0.1 s), given its own ``wp-config.php`` and
``wp-content``, a fresh MariaDB database, and served by ``php -S`` on a free
loopback port. WordPress is installed through its own installer
(``/wp-admin/install.php?step=2``) and plugins are activated with WordPress's
``activate_plugin()`` from a PHP CLI script, so activation hooks run exactly as
they do when an admin clicks "Activate".

Python::

    with LocalWordPress(plugins=[("formrelay-bridge", "wp_bridge_plugin")]) as wp:
        requests.get(wp.url + "/?rest_route=/")
        wp.php("echo get_option('siteurl');")

Shell::

    python -m devstack.wordpress up --plugin formrelay-bridge=wp_bridge_plugin
    python -m devstack.wordpress down --dir var/wp-<name>

Modules: ``site`` (LocalWordPress: up, down, driving a site), ``config`` (its
settings and paths), ``layout`` (files, wp-config.php, mail capture), ``server``
(``php -S``, process groups), ``database`` (create/drop), ``php`` (literals,
snippets), ``installer`` (install.php, plugin activation), ``logs``, ``cli``.
"""

from .config import PluginSpec
from .errors import WordPressError
from .php import PHPError, PHPValue, php_literal
from .server import free_port, process_group_alive
from .site import LocalWordPress

__all__ = [
    "LocalWordPress",
    "PHPError",
    "PHPValue",
    "PluginSpec",
    "WordPressError",
    "free_port",
    "php_literal",
    "process_group_alive",
]

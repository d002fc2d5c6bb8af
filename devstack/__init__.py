"""Local development stacks for FormRelay that need no Docker.

``devstack.wordpress.LocalWordPress`` runs a throwaway WordPress site (Debian's
``wordpress`` package, PHP's built-in server, a fresh MariaDB database) for
tests and demos; ``python -m devstack.wordpress up|down`` drives it from a shell.
"""

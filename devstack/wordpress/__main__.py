"""``python -m devstack.wordpress up|down``: see :mod:`devstack.wordpress.cli`."""

import sys

from .cli import main

sys.exit(main())

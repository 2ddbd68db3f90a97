"""``python -m pyloopkit``: see :mod:`pyloopkit.cli`."""
import sys

from .cli import main

sys.exit(main())

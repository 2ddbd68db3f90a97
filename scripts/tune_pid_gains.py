"""Rebuild ``pyloopkit/control/data/pid_gains.csv`` (seed and grid in ``pyloopkit/control/data/SOURCE.md``).

Usage: ``python scripts/tune_pid_gains.py`` (the same as ``python -m pyloopkit.control.pid_tuning``).
"""
from pyloopkit.control.pid_tuning import main

if __name__ == "__main__":
    raise SystemExit(main())

"""The cores this process may use, and the threads one model run takes by default.

Shared by the settings (their thread defaults) and by offline tools under
``engines/`` that run models outside the service (which take no settings).
"""

from __future__ import annotations

import os

__all__ = ["MAX_DEFAULT_INTRA_OP_THREADS", "cpu_count", "default_intra_op_threads"]

MAX_DEFAULT_INTRA_OP_THREADS = 4
"""More threads inside one run stop paying off here; more cores add runs instead."""


def cpu_count() -> int:
    """Cores this process may use (at least 1): what thread defaults are split from."""
    return max(1, os.cpu_count() or 1)


def default_intra_op_threads() -> int:
    """Threads inside one model run when nothing says otherwise."""
    return min(cpu_count(), MAX_DEFAULT_INTRA_OP_THREADS)

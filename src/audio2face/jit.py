"""Compiled per-frame kernels (numba), for the state machines of the "alive" features.

The prosody tracker and the alive postprocess steps advance a small state per stream
and per frame: a noise floor, a saccade schedule, a nod filter. In numpy that is a
few dozen ufunc calls per frame slot on arrays of a few dozen streams, and numpy's
per-call overhead (about a microsecond) made those steps cost a third of the default
engine (issue 14 asks for 10 %). The same loops as plain scalar code, compiled by
numba, run each stream's frames in one pass for a fraction of that.

Why numba, and how it is used here:

* Kernels are ordinary Python functions over numpy arrays and scalars, decorated with
  :func:`kernel`. Setting ``NUMBA_DISABLE_JIT=1`` runs them as plain Python (slow, but
  steppable in a debugger); the tests run them compiled, as the service does.
* Compiled code is cached on disk (numba's ``cache=True``), so a process after the
  first loads it in milliseconds instead of compiling (about a second per kernel).
  The cache goes to ``NUMBA_CACHE_DIR`` when set; otherwise numba writes next to the
  sources when it can, and this module points it at a per-user folder under the
  system's temporary directory when it cannot (read-only images, where only ``/tmp``
  is writable).
* ``nogil=True``: a kernel releases the GIL, so the event loop keeps serving sockets
  while the pusher thread runs one. ``error_model="numpy"``: float division by zero
  gives inf or nan, as in numpy, rather than raising.
* Results are exactly reproducible: no ``fastmath``, no parallel reductions; each
  stream's rows are computed in order from its own state only, so output does not
  depend on how streams are batched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

__all__ = ["dot4", "kernel", "sum4"]

F = TypeVar("F", bound=Callable[..., Any])


def _cache_dir() -> None:
    """Point numba's cache at a writable folder when the package folder is not."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = Path(__file__).parent
    if os.access(here, os.W_OK):
        return  # numba's default: __pycache__ next to each source file
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    os.environ["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / f"audio2face-numba-{uid}")


_cache_dir()

import numba  # noqa: E402 - after the cache folder is chosen (numba reads it on import)

# nogil: the event loop keeps running while the pusher thread is in a kernel.
# error_model "numpy": a division by zero gives inf or nan, as the numpy code the kernels
# replaced did, instead of raising (and without a zero test before every division).
_OPTIONS: dict[str, Any] = {"nogil": True, "error_model": "numpy"}


def kernel(fn: F) -> F:
    """Compile ``fn`` with numba (nopython, cached on disk, GIL released). Where no
    cache folder is writable at all, kernels still compile, in memory, each start."""
    try:
        return cast(F, numba.njit(cache=True, **_OPTIONS)(fn))
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return cast(F, numba.njit(**_OPTIONS)(fn))


@kernel
def sum4(x):
    """The sum of ``x`` in four interleaved partial sums: a fixed order (the same result
    wherever ``x`` lies in memory), and four times faster than one running sum, whose
    every addition waits for the one before."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = x.shape[0] - x.shape[0] % 4
    for j in range(0, n4, 4):
        s0 += x[j]
        s1 += x[j + 1]
        s2 += x[j + 2]
        s3 += x[j + 3]
    for j in range(n4, x.shape[0]):
        s0 += x[j]
    return (s0 + s1) + (s2 + s3)


@kernel
def dot4(x, y):
    """``sum(x * y)`` as :func:`sum4` adds."""
    s0 = s1 = s2 = s3 = 0.0
    n4 = x.shape[0] - x.shape[0] % 4
    for j in range(0, n4, 4):
        s0 += x[j] * y[j]
        s1 += x[j + 1] * y[j + 1]
        s2 += x[j + 2] * y[j + 2]
        s3 += x[j + 3] * y[j + 3]
    for j in range(n4, x.shape[0]):
        s0 += x[j] * y[j]
    return (s0 + s1) + (s2 + s3)

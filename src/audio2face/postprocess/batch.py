"""Many streams' frames at once: what the alive steps run on.

A server pushes the 40 ms bodies of tens of streams together; each body gives a frame
or two. Per-frame Python per stream would cost more than the model (the first version
did: 4.5 ms CPU per audio second), so the alive steps run on a :class:`Batch`: the
rows of every stream's new frames, stream after stream, with each step's per-stream
state stacked into one float64 matrix (one row per stream). Each step hands the whole
batch to one compiled kernel (:mod:`audio2face.jit`) that walks the streams and, for
each, its frames in order; a numpy version that advanced all streams together per
*frame slot* paid numpy's per-call overhead dozens of times per slot, a third of the
engine's cost (session 6's benchmarks).

Determinism: a stream's rows only ever meet its own state and its own values, every
operation is elementwise or within a row, and random numbers come from a counter-based
generator (:func:`uniforms`: a hash of the stream's key, a counter such as the frame
number, and a lane), not from a sequential generator. So a stream's output does not
depend on how its frames are chunked or on which other streams share its batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from audio2face.jit import kernel

if TYPE_CHECKING:
    from audio2face.audio.prosody import Prosody
    from audio2face.postprocess.base import StreamOptions

__all__ = ["KEY_SLOTS", "Array", "Batch", "key_of", "key_state", "normal", "uniform", "uniforms"]

IntArray = npt.NDArray[np.intp]
F64 = npt.NDArray[np.float64]
Array = npt.NDArray[Any]
"""Any numeric array (states, draws, per-row values)."""

KEY_SLOTS = 2
"""State columns 0 and 1 of every vectorised step hold its stream's 64-bit random key
as two 32-bit halves (exact in float64)."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LANE = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0**-53


def key_state(key: int, size: int) -> F64:
    """A fresh state row of ``size`` columns (zeros) holding the 64-bit ``key``."""
    row = np.zeros(size)
    row[0], row[1] = float(key >> 32), float(key & 0xFFFFFFFF)
    return row


@kernel
def key_of(state):
    """One stream's 64-bit key from its state row (columns 0 and 1), in a kernel."""
    return (np.uint64(state[0]) << np.uint64(32)) | np.uint64(state[1])


@kernel
def uniform(key, counter, lane):
    """A number in [0, 1): the SplitMix64 hash of (``key``, ``counter``, ``lane``), so
    the same key, counter and lane always give the same number, whatever else is
    computed alongside. ``counter`` is a frame or event number (an integer, or a
    float holding one); lanes count from 1."""
    z = key + np.uint64(counter) * _GOLDEN + np.uint64(lane) * _LANE
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * _TO_UNIT


@kernel
def normal(u1, u2):
    """A standard normal number from two uniforms (Box-Muller)."""
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@kernel
def _uniforms_kernel(keys, counters, out):
    for i in range(keys.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = uniform(keys[i], counters[i], j + 1)


def uniforms(keys: Array, counter: npt.ArrayLike, lanes: int) -> F64:
    """``[len(keys), lanes]`` numbers in [0, 1): :func:`uniform` of each key with its
    counter (one for all, or one per key) and lanes ``1 .. lanes``."""
    k = np.ascontiguousarray(keys, np.uint64)
    c = np.ascontiguousarray(np.broadcast_to(np.asarray(counter).astype(np.uint64), k.shape))
    out = np.empty((k.shape[0], lanes))
    _uniforms_kernel(k, c, out)
    return out


@dataclass(slots=True)
class Batch:
    """Frames of several streams, stream after stream.

    Stream ``i`` has ``counts[i]`` rows from row ``starts[i]``, showing its frames
    ``first[i]`` on. ``prosody`` covers exactly these rows (or is ``None``: no audio).
    ``options[i]`` are stream ``i``'s switches. ``shared`` holds per-row arrays that a
    step passes to later ones (the gaze step's saccade amplitudes to the blink step);
    a sub-batch (:meth:`subset`) reads and writes its rows of its parent's arrays.
    """

    counts: IntArray
    starts: IntArray
    first: IntArray
    fps: float
    prosody: Prosody | None
    options: Sequence[StreamOptions]
    n_rows: int = field(init=False)
    shared: dict[str, Any] = field(default_factory=dict)
    parent_rows: IntArray | None = None
    top_rows: int = -1

    def __post_init__(self) -> None:
        self.n_rows = int(self.counts.sum())
        if self.top_rows < 0:
            self.top_rows = self.n_rows

    @classmethod
    def of(
        cls,
        counts: Sequence[int],
        first: Sequence[int],
        fps: float,
        prosody: Prosody | None,
        options: Sequence[StreamOptions],
        shared: dict[str, Any] | None = None,
    ) -> Batch:
        c = np.asarray(counts, np.intp)
        starts = np.zeros_like(c)
        if c.shape[0] > 1:
            np.cumsum(c[:-1], out=starts[1:])
        return cls(c, starts, np.asarray(first, np.intp), fps, prosody, options,
                   shared={} if shared is None else shared)  # fmt: skip

    @property
    def n_streams(self) -> int:
        return int(self.counts.shape[0])

    def subset(self, streams: IntArray) -> tuple[Batch, IntArray]:
        """The batch of some of the streams, and its rows' indices in this one."""
        rows = np.concatenate(
            [np.arange(self.starts[i], self.starts[i] + self.counts[i]) for i in streams]
        ).astype(np.intp)
        prosody = None
        if self.prosody is not None:
            p = self.prosody
            prosody = type(p)(
                first_frame=p.first_frame, fps=p.fps, rms_db=p.rms_db[rows], f0_hz=p.f0_hz[rows],
                voiced=p.voiced[rows], speaking=p.speaking[rows], phrase_start=p.phrase_start[rows],
                phrase_end=p.phrase_end[rows], nucleus=p.nucleus[rows], bands=p.bands[rows],
                bands_valid=p.bands_valid,
            )  # fmt: skip
        sub = Batch.of(
            self.counts[streams].tolist(), self.first[streams].tolist(), self.fps, prosody,
            [self.options[i] for i in streams], self.shared,
        )  # fmt: skip
        sub.parent_rows = rows if self.parent_rows is None else self.parent_rows[rows]
        sub.top_rows = self.top_rows
        return sub, rows

    def publish(self, name: str, values: Array) -> None:
        """Store per-row ``values`` under ``name`` for later steps."""
        if self.parent_rows is None:
            self.shared[name] = values
            return
        full = self.shared.get(name)
        if full is None or full.shape[0] != self.top_rows:
            full = np.zeros(self.top_rows, values.dtype)
            self.shared[name] = full
        full[self.parent_rows] = values

    def read(self, name: str) -> Array | None:
        """This batch's rows of what a step published under ``name`` (``None``: nothing)."""
        full = self.shared.get(name)
        if full is None:
            return None
        if self.parent_rows is None:
            return full if full.shape[0] == self.n_rows else None
        return full[self.parent_rows]

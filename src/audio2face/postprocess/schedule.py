"""Clip placement shared by the blink steps, exact under any chunking.

Clips start at stream frames drawn from a per-stream generator (each gap uniform in
``[min_gap, max_gap]`` frames). Draws happen in blink order, whatever the chunk sizes,
and a clip that runs past the end of a chunk is finished in the next one, so output is
identical whether a stream arrives in one chunk or in many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from audio2face.types import FloatArray


@dataclass(frozen=True, slots=True)
class PlacedClip:
    """A clip bound to output columns: ``values[k, j]`` overwrites column ``cols[j]``."""

    cols: np.ndarray
    values: FloatArray

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(slots=True)
class ScheduleState:
    """Per-stream schedule: the generator, the next start and clips still playing."""

    rng: np.random.Generator
    next_start: int
    active: list[tuple[int, PlacedClip]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)  # history, for inspection and tests


@dataclass(frozen=True, slots=True)
class BlinkSchedule:
    """Gap bounds in frames, inclusive, and where the first clip may start."""

    min_gap: int
    max_gap: int
    first_offset: int = 0  # added to the first drawn gap

    def new_state(self, rng: np.random.Generator) -> ScheduleState:
        return ScheduleState(rng=rng, next_start=self.first_offset + self._gap(rng))

    def _gap(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.min_gap, self.max_gap + 1))

    def apply(
        self,
        frames: FloatArray,
        first_frame: int,
        state: ScheduleState,
        choose: Callable[[], PlacedClip],
    ) -> FloatArray:
        """Overwrite ``frames`` (a copy) with every clip overlapping this chunk.

        ``choose`` picks the clip of a blink that starts in this chunk, so the clip
        follows the emotion of the chunk where the blink begins.
        """
        out = frames.copy()
        end = first_frame + out.shape[0]
        while state.next_start < end:
            state.active.append((state.next_start, choose()))
            state.starts.append(state.next_start)
            state.next_start += self._gap(state.rng)
        keep: list[tuple[int, PlacedClip]] = []
        for start, clip in state.active:
            lo, hi = max(start, first_frame), min(start + len(clip), end)
            if lo < hi:
                out[lo - first_frame : hi - first_frame, clip.cols] = clip.values[
                    lo - start : hi - start
                ]
            if start + len(clip) > end:
                keep.append((start, clip))
        state.active = keep
        return out

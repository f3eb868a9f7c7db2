"""The concurrency cap below the batching layer, and batching by the pusher's layer:
window schedulers pushed together share model runs and get exactly their own frames.

No timing assertions: concurrency is observed with events (a gate holds the only slot).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from audio2face.engines.slots import CappedSession
from audio2face.streaming.window import WindowedStream, WindowOptions


@dataclass
class _Arg:
    name: str
    shape: list[Any]


class GatedSession:
    """y = 2 * x; every run waits for ``gate``; counts runs in flight."""

    def __init__(self, gate: threading.Event, *, fail: bool = False) -> None:
        self.gate = gate
        self.fail = fail
        self.in_flight = 0
        self.most_in_flight = 0
        self.arrived = threading.Semaphore(0)
        self._lock = threading.Lock()

    def get_inputs(self) -> list[_Arg]:
        return [_Arg("x", ["batch", "n"])]

    def get_outputs(self) -> list[_Arg]:
        return [_Arg("y", ["batch", "n"])]

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]) -> list[Any]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.arrived.release()
        self.gate.wait(10)
        with self._lock:
            self.in_flight -= 1
        if self.fail:
            raise RuntimeError("boom")
        return [2.0 * feeds["x"]]


@pytest.mark.parametrize("workers", [1, 2])
def test_at_most_workers_runs_at_once(workers: int) -> None:
    gate = threading.Event()
    fake = GatedSession(gate)
    capped = CappedSession(fake, workers=workers)
    rows: list[int] = []
    capped.set_observer(lambda n, _s: rows.append(n))
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(capped.run(None, {"x": np.full((i + 1, 3), i, np.float32)})))
        for i in range(4)
    ]  # fmt: skip
    for t in threads:
        t.start()
    for _ in range(workers):  # the slots fill; nobody else gets in while the gate is shut
        assert fake.arrived.acquire(timeout=10)
    assert not fake.arrived.acquire(timeout=0.2)
    gate.set()
    for t in threads:
        t.join(10)
    assert fake.most_in_flight == workers
    assert sorted(rows) == [1, 2, 3, 4]  # axis 0 of each run's first input
    assert sorted(float(r[0][0, 0]) for r in results) == [0.0, 2.0, 4.0, 6.0]


def test_errors_reach_the_caller_and_a_failing_observer_never_fails_a_run() -> None:
    gate = threading.Event()
    gate.set()
    capped = CappedSession(GatedSession(gate, fail=True), workers=1)
    with pytest.raises(RuntimeError, match="boom"):
        capped.run(None, {"x": np.zeros((1, 2), np.float32)})
    ok = CappedSession(GatedSession(gate), workers=1)
    ok.set_observer(lambda n, s: 1 / 0)
    out = ok.run(None, {"x": np.ones((1, 2), np.float32)})
    np.testing.assert_array_equal(out[0], 2.0)
    with pytest.raises(ValueError, match="workers"):
        CappedSession(GatedSession(gate), workers=0)


def test_windowed_streams_pushed_together_share_runs_and_match_alone(tiny_unitalker_batch_path) -> None:
    from audio2face.engines.onnx import OrtOptions
    from audio2face.engines.unitalker import UniTalkerModel

    names = tuple(f"c{i}" for i in range(51))
    model = UniTalkerModel.load(tiny_unitalker_batch_path, OrtOptions(providers="cpu"), output_names=names)
    sizes: list[int] = []
    model.attach_batch_observer(lambda n, _s: sizes.append(n))
    opts = WindowOptions(left_context_s=0.5, hop_s=0.2, lookahead_s=0.1, crossfade_s=0.1)
    rng = np.random.default_rng(1)
    audios = [rng.normal(0, 0.1, 16000 * 2).astype(np.float32) for _ in range(4)]
    together = [WindowedStream(model, opts) for _ in audios]
    alone = [WindowedStream(model, opts) for _ in audios]
    got: list[list[np.ndarray]] = [[] for _ in audios]
    want: list[list[np.ndarray]] = [[] for _ in audios]
    for start in range(0, 32000, 1600):
        outs = WindowedStream.push_many(together, [a[start : start + 1600] for a in audios], [None] * 4)
        for k, out in enumerate(outs):
            got[k].append(out)
    batched_sizes = list(sizes)
    for k, (s, a) in enumerate(zip(alone, audios, strict=True)):
        for start in range(0, 32000, 1600):
            want[k].append(s.push(a[start : start + 1600]))
    for k in range(4):
        np.testing.assert_allclose(np.concatenate(got[k]), np.concatenate(want[k]), atol=1e-5)
    assert max(batched_sizes) == 4  # every stream's due window in one run


def test_full_windows_have_one_length_whatever_the_phase(toy_model) -> None:
    """Windows of different streams can only share a batch if their lengths match:
    the frame grid is not a whole number of samples, so the scheduler fixes the count."""
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 6).astype(np.float32)
    opts = WindowOptions(left_context_s=0.3, hop_s=0.2, lookahead_s=0.1, crossfade_s=0.1)
    for first in (640, 333, 1):
        toy_model.calls.clear()
        s = WindowedStream(toy_model, opts)
        s.push(audio[:first])
        for i in range(first, len(audio), 640):
            s.push(audio[i : i + 640])
        full = toy_model.calls[2:]  # the first windows start at 0 with less context
        assert len(full) > 10
        assert set(full) == {(round(18 * 16000 / 30), 18)}

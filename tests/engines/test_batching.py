"""Cross-stream micro-batching: each caller gets its own rows, groups by shape and
shared values, errors reach the whole batch, and waiting ends when a batch is full.

No timing assertions: batches are made deterministic by filling them up
(``max_batch_size`` reached) or by holding the only worker busy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from audio2face.engines.batching import BatchingSession


@dataclass
class _Arg:
    name: str
    shape: list[Any]


class FakeSession:
    """y = 2 * x + k, with x batched ``[B, n]`` and k shared ``[1]``; records each run."""

    def __init__(self, *, fail: bool = False, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[int, int, int]] = []  # (batch rows, n, k)
        self.fail = fail
        self.gate = gate
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def get_inputs(self) -> list[_Arg]:
        return [_Arg("x", ["batch", "n"]), _Arg("k", [1])]

    def get_outputs(self) -> list[_Arg]:
        return [_Arg("y", ["batch", "n"])]

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]) -> list[Any]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        x, k = feeds["x"], feeds["k"]
        with self._lock:
            self.calls.append((int(x.shape[0]), int(x.shape[1]), int(k[0])))
        if self.fail:
            raise RuntimeError("boom")
        return [2.0 * x + k[0]]


def _feeds(seed: int, n: int = 8, k: int = 0) -> dict[str, np.ndarray]:
    x = np.random.default_rng(seed).normal(size=(1, n)).astype(np.float32)
    return {"x": x, "k": np.array([k], dtype=np.int32)}


def _run_concurrently(
    batcher: BatchingSession, feeds: list[dict[str, np.ndarray]]
) -> list[Any]:
    """Call ``batcher.run`` from one thread per feed; results (or exceptions) in order."""
    results: list[Any] = [None] * len(feeds)

    def call(i: int) -> None:
        try:
            results[i] = batcher.run(None, feeds[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(feeds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_each_caller_gets_its_own_rows() -> None:
    fake = FakeSession()
    sizes: list[int] = []
    b = BatchingSession(fake, workers=1, max_batch_size=4, wait_s=30.0,
                        observer=lambda n, s: sizes.append(n))  # fmt: skip
    feeds = [_feeds(i, k=3) for i in range(4)]
    results = _run_concurrently(b, feeds)
    assert fake.calls == [(4, 8, 3)]  # one run: the batch filled up, nobody waited 30 s
    assert sizes == [4]
    for f, (y,) in zip(feeds, results, strict=True):
        np.testing.assert_allclose(y, 2.0 * f["x"] + 3, atol=1e-5)
    b.close()


def test_groups_by_trailing_shape_and_shared_values() -> None:
    fake = FakeSession()
    b = BatchingSession(fake, workers=1, max_batch_size=2, wait_s=30.0)
    feeds = [_feeds(0, n=8), _feeds(1, n=16), _feeds(2, n=8), _feeds(3, n=16),
             _feeds(4, n=8, k=1), _feeds(5, n=8, k=1)]  # fmt: skip
    results = _run_concurrently(b, feeds)
    assert sorted(fake.calls) == [(2, 8, 0), (2, 8, 1), (2, 16, 0)]
    for f, (y,) in zip(feeds, results, strict=True):
        np.testing.assert_allclose(y, 2.0 * f["x"] + f["k"][0], atol=1e-5)
    b.close()


def test_error_reaches_every_caller_of_the_batch_and_only_them() -> None:
    fake = FakeSession(fail=True)
    b = BatchingSession(fake, workers=1, max_batch_size=3, wait_s=30.0)
    results = _run_concurrently(b, [_feeds(i) for i in range(3)])
    assert len(fake.calls) == 1
    assert all(isinstance(r, RuntimeError) and "boom" in str(r) for r in results)
    fake.fail = False
    b.wait_s = 0.0  # a lone request: do not wait for company
    (y,) = b.run(None, _feeds(9))  # the pool survives a failed batch
    assert y.shape == (1, 8)
    b.close()


def test_requests_pile_up_into_one_batch_while_the_slot_is_busy() -> None:
    gate = threading.Event()
    fake = FakeSession(gate=gate)
    b = BatchingSession(fake, workers=1, max_batch_size=64, wait_s=0.0)
    first = threading.Thread(target=b.run, args=(None, _feeds(0, n=4)))
    first.start()
    assert fake.entered.wait(10), "first request never reached the model"
    deadline = time.monotonic() + 10
    results: list[Any] = []
    later = [threading.Thread(target=lambda i=i: results.append(b.run(None, _feeds(i))))
             for i in range(1, 4)]  # fmt: skip
    for t in later:
        t.start()
    while sum(len(g.requests) for g in b._open.values()) < 3:
        if time.monotonic() > deadline:
            pytest.fail("later requests never queued")
        time.sleep(0.001)
    gate.set()
    for t in [first, *later]:
        t.join(10)
    assert fake.calls == [(1, 4, 0), (3, 8, 0)]
    assert len(results) == 3
    b.close()


def test_lone_request_runs_after_the_wait_and_batch_size_one_never_concatenates() -> None:
    fake = FakeSession()
    b = BatchingSession(fake, workers=2, max_batch_size=1, wait_s=0.001)
    results = _run_concurrently(b, [_feeds(i) for i in range(3)])
    assert sorted(fake.calls) == [(1, 8, 0)] * 3
    assert all(r[0].shape == (1, 8) for r in results)
    b.close()


def test_bad_feeds_are_refused() -> None:
    b = BatchingSession(FakeSession(), workers=1, max_batch_size=4, wait_s=0.0)
    with pytest.raises(ValueError, match="do not match"):
        b.run(None, {"x": np.zeros((1, 4), np.float32)})
    with pytest.raises(ValueError, match="run_options"):
        b.run(None, _feeds(0), run_options=object())
    with pytest.raises(ValueError, match="not inputs"):
        BatchingSession(FakeSession(), workers=1, max_batch_size=4, wait_s=0.0,
                        batch_inputs=["nope"])  # fmt: skip
    b.close()


def test_unitalker_windows_batched_equal_unbatched(tiny_unitalker_batch_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from audio2face.engines.unitalker import UniTalkerModel

    names = tuple(f"c{i}" for i in range(51))
    session = ort.InferenceSession(str(tiny_unitalker_batch_path),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    direct = UniTalkerModel(session, output_names=names)
    sizes: list[int] = []
    batcher = BatchingSession(session, workers=1, max_batch_size=5, wait_s=30.0,
                              observer=lambda n, s: sizes.append(n))  # fmt: skip
    assert batcher.batch_inputs == {"audio"}  # emo_id [1] and time_steps are shared
    batched = UniTalkerModel(batcher, output_names=names)
    rng = np.random.default_rng(1)
    audios = [rng.normal(0, 0.1, 16000).astype(np.float32) for _ in range(5)]
    out: list[Any] = [None] * 5

    def call(i: int) -> None:
        out[i] = batched.infer(audios[i], 30)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sizes == [5]
    for a, y in zip(audios, out, strict=True):
        np.testing.assert_allclose(y, direct.infer(a, 30), atol=1e-5)
    batcher.close()


def test_full_windows_have_one_length_whatever_the_phase(toy_model) -> None:
    """Windows of different streams can only share a batch if their lengths match:
    the frame grid is not a whole number of samples, so the scheduler fixes the count."""
    from audio2face.streaming.window import WindowedStream

    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 6).astype(np.float32)
    for first in (640, 333, 1):
        toy_model.calls.clear()
        s = WindowedStream(toy_model, left_context_s=0.3, hop_s=0.2, lookahead_s=0.1,
                           crossfade_s=0.1)  # fmt: skip
        s.push(audio[:first])
        for i in range(first, len(audio), 640):
            s.push(audio[i : i + 640])
        full = toy_model.calls[2:]  # the first windows start at 0 with less context
        assert len(full) > 10
        assert {c for c in full} == {(round(18 * 16000 / 30), 18)}

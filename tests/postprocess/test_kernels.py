"""The compiled kernels: the random numbers they draw, and that the service compiles
them once, at start, not under a stream."""

from __future__ import annotations

import numpy as np

from audio2face.audio import prosody
from audio2face.postprocess import arousal, batch, blinks, gaze, head, tongue
from audio2face.postprocess.warmup import warm_up

MASK = (1 << 64) - 1


def splitmix(key: int, counter: int, lane: int) -> float:
    """SplitMix64 of (key, counter, lane) in Python integers: the reference."""
    z = (key + counter * 0x9E3779B97F4A7C15 + lane * 0xD1B54A32D192ED03) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    z ^= z >> 31
    return (z >> 11) * 2.0**-53


def test_uniform_is_splitmix64_with_wrapping_arithmetic() -> None:
    rng = np.random.default_rng(3)
    keys = [int(k) for k in rng.integers(0, 2**63, 20)] + [MASK, 0]
    for key in keys:
        for counter, lane in ((0, 1), (7, 3), (123456789, 10)):
            want = splitmix(key, counter, lane)
            assert batch.uniform(np.uint64(key), counter, lane) == want
            assert batch.uniform(np.uint64(key), float(counter), lane) == want  # gaze's counters
    got = batch.uniforms(np.array(keys, np.uint64), 5, 3)
    assert got.shape == (len(keys), 3)
    assert got[0, 2] == splitmix(keys[0], 5, 3)


def test_one_compiled_version_per_kernel_after_warm_up() -> None:
    """The warm-up compiles each kernel for the types the chain passes; running the
    chain afterwards (every feature on, or some off) compiles nothing more."""
    warm_up()
    kernels = [
        prosody._machine_kernel, prosody._windows_kernel, prosody._power_kernel,
        prosody._features_kernel, head._head_kernel, gaze._gaze_kernel,
        blinks._blink_kernel, tongue._features_kernel, tongue._tongue_kernel,
        tongue._standardized_kernel, tongue._layer_kernel, tongue._softmax_kernel,
        arousal._arousal_kernel,
    ]  # fmt: skip
    before = [len(k.signatures) for k in kernels]
    assert before == [1] * len(kernels)
    # A built-in profile's chain, as sessions run it: three streams at 48 kHz, one with
    # gaze and blinks off, frame by frame and in uneven batches.
    from audio2face.postprocess import StreamOptions
    from audio2face.profiles import ProfileRegistry

    chain = ProfileRegistry(engines=("default",)).get("arkit-head").build_chain()
    opts = [StreamOptions(), StreamOptions(off=frozenset({"gaze", "blinks"})), StreamOptions()]
    streams = [chain.new_stream(k, o) for k, o in enumerate(opts)]
    trackers = [prosody.ProsodyTracker(48000, chain.fps) for _ in streams]
    rng = np.random.default_rng(0)
    for counts in ([1, 1, 1], [2, 0, 1], [0, 3, 1]):
        for tr, n in zip(trackers, counts, strict=True):
            tr.push(rng.normal(0, 0.05, 1600 * n).astype(np.float32))
        rows = prosody.ProsodyTracker.take_rows(trackers, counts)
        x = np.zeros((sum(counts), len(chain.input_names)), np.float32)
        chain.run_many(streams, x, counts, [None] * 3, rows)
    assert [len(k.signatures) for k in kernels] == before


def test_a_read_only_install_caches_kernels_under_the_temporary_folder(monkeypatch) -> None:
    """Where the package folder is not writable (a read-only image) and no
    NUMBA_CACHE_DIR is set, the cache goes to a per-user folder under the temporary
    directory; a NUMBA_CACHE_DIR the user set is left alone."""
    import os
    import tempfile

    from audio2face import jit

    # Recorded first, so the test leaves the variable as it found it.
    monkeypatch.setenv("NUMBA_CACHE_DIR", "recorded")
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(jit.os, "access", lambda path, mode: False)
    jit._cache_dir()
    chosen = os.environ["NUMBA_CACHE_DIR"]
    assert chosen.startswith(tempfile.gettempdir())
    assert "audio2face-numba" in chosen
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    jit._cache_dir()
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere/else"

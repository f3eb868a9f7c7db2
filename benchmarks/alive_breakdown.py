"""Where the alive features' cost goes inside the pusher, as the server pays it.

    python benchmarks/alive_breakdown.py [--streams 64] [--repeats 6] [--out FILE]

``benchmarks/alive.py``'s server cost (64 streams of real speech pushed in 40 ms
bodies through the runtime's pusher, ``arkit`` against ``arkit-head``, runs
alternating), with the pusher thread's CPU time (``time.thread_time``) added up per
function: the engine's model step, the prosody tracker's push and batch analysis (its
FFTs and kernels), the postprocess chain. Each is reported in ms of CPU per audio
second per stream, for both profiles, and their difference.

Why a separate measurement: the same functions timed alone, in a loop (a
micro-benchmark), cost about half as much as inside the pusher, where the model run
between two batches leaves the caches cold. Only the pusher's own thread is timed, so
the event loop's work (the clients) is left out; ``process`` is the whole process, as
``alive.py`` reports it. The wrappers add about a microsecond per call.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import alive  # noqa: E402 - the benchmark folder is not a package

PUSHES = 100  # 40 ms bodies per stream and run (alive.server_cost's default)
PARTS = (
    "push_sessions", "engine", "emit", "tracker.push", "take_rows", "analyse", "rfft",
    "irfft", "kernels", "machine", "chain",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    import numpy as np

    from audio2face.audio import prosody
    from audio2face.engines.default.stream import DefaultEngineStream
    from audio2face.postprocess.chain import Chain
    from audio2face.streaming import pusher, session

    now = {"profile": ""}
    spent: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def timed(name: str, fn: Callable[..., Any], within: str = "") -> Callable[..., Any]:
        """``fn``, its thread CPU time added to ``name`` (only inside ``within``'s calls
        when given: numpy's FFTs serve the engine's log-mel too)."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.thread_time()
            inside.add(name)
            try:
                return fn(*args, **kwargs)
            finally:
                inside.discard(name)
                if now["profile"] and (not within or within in inside):
                    spent[now["profile"]][name] += time.thread_time() - t0

        return wrapper

    inside: set[str] = set()  # the pusher is the only thread that calls these
    pusher.push_sessions = timed("push_sessions", pusher.push_sessions)  # type: ignore[assignment]
    session._emit_many = timed("emit", session._emit_many)  # type: ignore[assignment]
    DefaultEngineStream.push_many = staticmethod(  # type: ignore[method-assign]
        timed("engine", DefaultEngineStream.push_many)
    )
    take_rows = prosody.ProsodyTracker.take_rows
    prosody.ProsodyTracker.take_rows = staticmethod(timed("take_rows", take_rows))  # type: ignore[method-assign]
    prosody.ProsodyTracker.push = timed("tracker.push", prosody.ProsodyTracker.push)  # type: ignore[method-assign]
    prosody._analyse = timed("analyse", prosody._analyse)  # type: ignore[assignment]
    prosody._Machine.run = timed("machine", prosody._Machine.run)  # type: ignore[method-assign]
    for k in ("_windows_kernel", "_power_kernel", "_features_kernel"):
        setattr(prosody, k, timed("kernels", getattr(prosody, k)))
    Chain.run_many = timed("chain", Chain.run_many)  # type: ignore[method-assign]
    np.fft.rfft = timed("rfft", np.fft.rfft, within="analyse")  # type: ignore[assignment]
    np.fft.irfft = timed("irfft", np.fft.irfft, within="analyse")  # type: ignore[assignment]

    def before_run(profile: str) -> None:
        now["profile"] = profile

    result = alive.server_cost(args.streams, args.repeats, PUSHES, before_run=before_run)
    now["profile"] = ""
    audio_s = args.repeats * args.streams * PUSHES * 0.04  # per profile: 40 ms bodies
    table: dict[str, dict[str, float]] = {}
    print(f"{'part':14s} {'arkit':>8s} {'arkit-head':>11s} {'extra':>8s}  ms CPU per audio s per stream")
    for part in PARTS:
        a = 1000.0 * spent["arkit"][part] / audio_s
        h = 1000.0 * spent["arkit-head"][part] / audio_s
        table[part] = {"arkit": round(a, 4), "arkit-head": round(h, 4), "extra": round(h - a, 4)}
        print(f"{part:14s} {a:8.3f} {h:11.3f} {h - a:+8.3f}")
    # The alive work is the tracker's push and what the emit step adds (the batch
    # analysis, the longer chain); the engine's own run is left out of the difference,
    # so its run-to-run scatter does not land in it.
    engine = table["engine"]["arkit"]
    extra = table["tracker.push"]["extra"] + table["emit"]["extra"]
    print(f"alive extra in the pusher thread: {extra:.3f} ms = {extra / engine:.1%} of the engine")
    print("process CPU (alive.py's measure):", json.dumps(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {"parts_ms_cpu_per_audio_s": table, "alive_share_of_engine": round(extra / engine, 4),
               "process": result}  # fmt: skip
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

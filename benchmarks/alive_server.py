"""What the alive features cost a real server: ``arkit`` against ``arkit-head``.

    python benchmarks/alive_server.py [--streams 64] [--seconds 20] [--repeats 3]
                                      [--out benchmarks/results/alive_server.json]

Each run is ``audio2face bench`` (a real ``audio2face serve`` process on loopback,
protocol v1 clients pacing 40 ms bodies of real speech in real time) with every
stream asking for one profile; runs alternate ``arkit`` (lips and the original's
blinks) and ``arkit-head`` (every alive feature: prosody, head, gaze, blinks, tongue,
arousal), ``--repeats`` times each, because the VM's speed drifts between minutes.
The server's CPU (from /proc, the whole process tree) divided by the streams is what
one stream costs the server; the alive features' share is the median of the pairs'
differences over the median ``arkit`` cost. ``benchmarks/alive.py`` measures the same
difference inside the pusher alone (no transport), against the engine's own cost.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

PROFILES = ("arkit", "arkit-head")


def one_run(profile: str, streams: int, seconds: float, folder: Path) -> dict:
    """One ``audio2face bench`` step; its JSON row."""
    from audio2face.bench import main as bench

    prefix = folder / f"{profile}-{len(list(folder.iterdir()))}"
    code = bench(["--streams", str(streams), "--seconds", str(seconds), "--profile", profile,
                  "--p95-bound", "1.0", "--out", str(prefix)])  # fmt: skip
    if code != 0:
        raise SystemExit(f"audio2face bench failed for {profile} (exit {code})")
    result = json.loads(prefix.with_suffix(".json").read_text(encoding="utf-8"))
    return result["runs"][0]["steps"][0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    runs: dict[str, list[dict]] = {p: [] for p in PROFILES}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for profile in PROFILES:
                runs[profile].append(one_run(profile, args.streams, args.seconds, Path(tmp)))
    # CPU ms per audio second per stream: cores busy x 1000 / streams (paced in real time).
    cost = {p: [1000.0 * r["server_cpu_cores"] / args.streams for r in rows]
            for p, rows in runs.items()}  # fmt: skip
    lips = float(np.median(cost["arkit"]))
    extra = float(np.median(np.subtract(cost["arkit-head"], cost["arkit"])))
    result = {
        "streams": args.streams,
        "seconds": args.seconds,
        "server_ms_cpu_per_audio_s_per_stream": {p: [round(c, 2) for c in v] for p, v in cost.items()},
        "p95_s": {p: [r["p95"] for r in rows] for p, rows in runs.items()},
        "arkit_per_stream": round(lips, 3),
        "alive_extra": round(extra, 3),
        "alive_share_of_server": round(extra / lips, 3),
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The alive features' cost through the pusher, of this tree against an older commit's.

    python benchmarks/alive_ab.py --old-src /path/to/old/checkout/src [--rounds 4]
                                  [--streams 64] [--repeats 4] [--batch-wait-ms MS]
                                  [--out FILE]

Each round runs ``benchmarks/alive.py``'s server cost (64 streams of real speech pushed
in 40 ms bodies through the runtime's pusher, ``arkit`` against ``arkit-head``, runs
alternating) in a fresh process, once with the old sources and once with these,
alternating, because the VM's speed drifts by tens of percent within minutes and only
runs next to each other compare. Prints and writes both sides' alive extra and share
per round, and their medians. Make the old checkout with
``git worktree add /tmp/old COMMIT``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SNIPPET = (
    "import json, sys; sys.path[:0] = [{src!r}, {bench!r}]; import alive; "
    "print(json.dumps(alive.server_cost({streams}, {repeats}, batch_wait_ms={wait})))"
)


def one(src: Path, streams: int, repeats: int, wait: float | None) -> dict:
    code = SNIPPET.format(
        src=str(src), bench=str(HERE), streams=streams, repeats=repeats, wait=wait
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--old-src", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--batch-wait-ms", type=float, default=None,
                    help="the pusher's batch wait (default: the service's)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    new_src = HERE.parent / "src"
    rows: dict[str, list[dict]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for side, src in (("old", args.old_src), ("new", new_src)):
            got = one(src, args.streams, args.repeats, args.batch_wait_ms)
            rows[side].append(got)
            print(f"round {r} {side}: arkit {got['engine_arkit_per_stream']} ms, alive extra "
                  f"{got['alive_extra']} ms, share {got['alive_share_of_engine']}", flush=True)  # fmt: skip
    summary = {
        side: {
            "arkit_median": round(float(np.median([g["engine_arkit_per_stream"] for g in v])), 3),
            "alive_extra_median": round(float(np.median([g["alive_extra"] for g in v])), 3),
            "share_median": round(float(np.median([g["alive_share_of_engine"] for g in v])), 3),
        }
        for side, v in rows.items()
    }
    result = {"streams": args.streams, "repeats": args.repeats, "rounds": rows, "summary": summary}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

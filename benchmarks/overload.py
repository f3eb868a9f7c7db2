"""Overload: ramp paced v1 streams past the server's capacity and record what the
admitted streams get (issue 13: overload must degrade, not lag).

Starts its own server process on 127.0.0.1 (``audio2face serve`` with the default
engine, or a UniTalker-signature model with ``--unitalker-model``; the UniTalker-sized
test models are ``benchmarks/models/unitalker_like.onnx`` and its ``_int8`` copy).
Every ``--step-s`` seconds one more client starts; each streams espeak-ng speech in
100 ms bodies at real time, utterance after utterance, on a new connection each time,
until ``--max-streams`` clients run for ``--hold-s`` more. A refused stream (1013) waits
``--retry-s`` and tries again, as a client behind a load balancer would.

    python benchmarks/overload.py --max-streams 40 --step-s 2 --out benchmarks/results/overload
    python benchmarks/overload.py --unitalker-model benchmarks/models/unitalker_like.onnx \\
        --max-streams 16 --step-s 4 --out benchmarks/results/overload_unitalker

writes ``<out>.json`` (every utterance) and ``<out>.md``: per ramp level, the clients
running, utterances completed, refusals at capacity (1013 "at capacity"), streams
shed newest first (1013 "shedding the newest stream"), streams closed at their own lag
bound (1013 ``max_lag_s``), other errors and the admitted streams' p50/p95
per-frame latency. Before the ramp, one utterance runs alone: its p95 is the engine's
own latency (the default engine's look-ahead; a window scheduler's hop, look-ahead and
one window's compute). ``max_lag_s`` bounds how far a stream falls *behind* that, so
the run passes (exit status 0) when the admitted streams' p95 stays within the alone
p95 plus ``max_lag_s`` at every level: past capacity, the server refuses or sheds
instead of falling further behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio2face.client import StreamError, Utterance, UtteranceOptions, V1Client
from audio2face.types import frames_for_samples

RATE = 16000
FPS = 30.0
TEXT = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."
SERVE_TINY = (
    "from audio2face.loading import load_unitalker_engine\n"
    "from audio2face.logs import configure_logging\n"
    "from audio2face.server.serve import serve\n"
    "from audio2face.settings import Settings\n"
    "s = Settings.load(); configure_logging(s)\n"
    "serve(s, engines={'unitalker': load_unitalker_engine(s)})\n"
)


@dataclass
class Level:
    """What happened while ``clients`` clients were running."""

    clients: int
    done: int = 0
    at_capacity: int = 0
    shed: int = 0
    lagged: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        return {
            "clients": self.clients, "done": self.done, "at_capacity": self.at_capacity,
            "shed": self.shed, "lagged": self.lagged, "errors": self.errors,
            "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 1),
            "p95_ms": round(float(np.percentile(lat, 95)) * 1e3, 1),
        }  # fmt: skip


def speech_pcm() -> bytes:
    """A few seconds of espeak-ng speech as 16 kHz int16 PCM."""
    from audio2face.audio.resample import resample
    from audio2face.audio.wav import to_pcm16
    from audio2face.engines.phonemes.espeak import SynthOptions, synthesize

    speech = synthesize(TEXT, SynthOptions(rate=165))
    return to_pcm16(resample(speech.audio, speech.sample_rate, RATE))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = dict(os.environ, AUDIO2FACE_HOST="127.0.0.1", AUDIO2FACE_PORT=str(port),
               AUDIO2FACE_MAX_STREAMS=str(max(256, args.max_streams * 2)),
               AUDIO2FACE_MAX_LAG_S=str(args.max_lag_s))  # fmt: skip
    if args.unitalker_model:
        env.update(AUDIO2FACE_UNITALKER_MODEL=str(args.unitalker_model),
                   AUDIO2FACE_DEFAULT_PROFILE="unitalker")  # fmt: skip
        cmd = [sys.executable, "-c", SERVE_TINY]
    else:
        cmd = [sys.executable, "-m", "audio2face.cli", "serve", "--port", str(port)]
    log = open(args.out.with_suffix(".server.log"), "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"127.0.0.1:{port}"


def wait_ready(host: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see the .server.log")
        try:
            if httpx.get(f"http://{host}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in time")


async def client_loop(client: V1Client, utterance: Utterance, levels: list[Level],
                      stop: float, retry_s: float, log: list[dict], *, once: bool = False) -> None:  # fmt: skip
    """Utterance after utterance until ``stop`` (``once``: one utterance that completes,
    whenever ``stop`` is); each outcome goes to the level that was current when it ended."""
    from audio2face.bench import utterance_stats

    want = frames_for_samples(utterance.samples, RATE, FPS)
    while once or time.monotonic() < stop:
        level = levels[-1]
        entry: dict[str, object] = {"clients": level.clients, "t": time.monotonic()}
        try:
            result = await asyncio.wait_for(client.run(utterance), utterance.seconds + 60)
        except StreamError as exc:
            reason = exc.reason or ""
            kind = (
                "at_capacity" if exc.code == 1013 and "at capacity" in reason
                else "shed" if exc.code == 1013 and "shedding" in reason
                else "lagged" if exc.code == 1013 and "max_lag_s" in reason
                else "errors"
            )  # fmt: skip
            setattr(levels[-1], kind, getattr(levels[-1], kind) + 1)
            log.append({**entry, "outcome": kind, "code": exc.code, "reason": reason})
            await asyncio.sleep(retry_s)
            continue
        except Exception as exc:  # noqa: BLE001 - every failure is a data point
            levels[-1].errors += 1
            log.append({**entry, "outcome": "errors", "reason": f"{type(exc).__name__}: {exc}"})
            await asyncio.sleep(retry_s)
            continue
        stats = utterance_stats(
            result.sends, result.arrivals, result.end_sent, result.end_received, want
        )
        levels[-1].latencies.extend(stats.latencies)
        levels[-1].done += 1
        p95 = float(np.percentile(stats.latencies, 95)) if stats.latencies else 0.0
        log.append({**entry, "outcome": "done", "p95_s": round(p95, 4)})
        if once:
            return


async def run(args: argparse.Namespace) -> bool:
    pcm = speech_pcm()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    proc, host = start_server(args)
    try:
        await asyncio.to_thread(wait_ready, host, proc)
        client = V1Client(f"ws://{host}/api/v1/streaming_audio2face/ws")
        utterance = Utterance.from_pcm(pcm, UtteranceOptions(chunk_ms=100, pace=True))
        # One utterance alone first: the latency an idle server gives (the floor).
        alone_levels = [Level(1)]
        await client_loop(client, utterance, alone_levels, time.monotonic(), args.retry_s, [], once=True)
        alone = alone_levels[-1].row()
        stop = time.monotonic() + args.max_streams * args.step_s + args.hold_s
        levels = [Level(0)]
        log: list[dict] = []
        tasks = []
        for n in range(1, args.max_streams + 1):
            levels.append(Level(n))
            tasks.append(asyncio.create_task(
                client_loop(client, utterance, levels, stop, args.retry_s, log)
            ))  # fmt: skip
            await asyncio.sleep(args.step_s)
        await asyncio.gather(*tasks)
        ran = [lv for lv in levels if lv.clients]
        return report(args, [lv.row() for lv in ran], log, total(ran).row(), alone)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def total(levels: list[Level]) -> Level:
    """Every level together (``clients`` 0): the admitted streams' latency over the run."""
    out = Level(0)
    for lv in levels:
        for name in ("done", "at_capacity", "shed", "lagged", "errors"):
            setattr(out, name, getattr(out, name) + getattr(lv, name))
        out.latencies.extend(lv.latencies)
    return out


def report(args: argparse.Namespace, rows: list[dict], log: list[dict], overall: dict,
           alone: dict) -> bool:  # fmt: skip
    bound_ms = alone["p95_ms"] + args.max_lag_s * 1e3
    ok = all(r["p95_ms"] <= bound_ms for r in rows if r["done"])
    engine = f"unitalker ({args.unitalker_model.name})" if args.unitalker_model else "default"
    doc = {"engine": engine, "max_streams": args.max_streams, "step_s": args.step_s,
           "max_lag_s": args.max_lag_s, "alone": alone, "bound_ms": round(bound_ms, 1),
           "passed": ok, "levels": rows, "all": overall,
           "utterances": log}  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    lines = [
        f"Overload ramp: 1..{args.max_streams} clients, one more every {args.step_s:g} s, "
        f"{engine} engine, max_lag_s={args.max_lag_s:g}: {'PASS' if ok else 'FAIL'}",
        "",
        f"One stream alone: p50 {alone['p50_ms']} ms, p95 {alone['p95_ms']} ms; bound on the "
        f"admitted streams' p95: that + max_lag_s = {bound_ms:.0f} ms.",
        "",
        "| clients | utterances done | refused at capacity | shed (newest) | closed for lag "
        "| other errors | p50 ms | p95 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['clients']} | {r['done']} | {r['at_capacity']} | {r['shed']} | {r['lagged']} | "
          f"{r['errors']} | {r['p50_ms']} | {r['p95_ms']} |" for r in rows],
        f"| all | {overall['done']} | {overall['at_capacity']} | {overall['shed']} | "
        f"{overall['lagged']} | {overall['errors']} | {overall['p50_ms']} | {overall['p95_ms']} |",
    ]  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-streams", type=int, default=40, help="clients at the end of the ramp")
    p.add_argument("--step-s", type=float, default=2.0, help="seconds between client starts")
    p.add_argument("--hold-s", type=float, default=20.0, help="seconds at the top of the ramp")
    p.add_argument("--retry-s", type=float, default=1.0, help="wait after a refusal")
    p.add_argument("--max-lag-s", type=float, default=2.0, help="the server's max_lag_s")
    p.add_argument("--unitalker-model", type=Path,
                   help="serve this UniTalker-signature model instead of the default engine")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/overload"))
    args = p.parse_args()
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()

"""Soak test: N paced v1 streams against one server for a set time, watching the
server process's RSS and open file descriptors, per-frame latency and errors.

Starts its own server process on 127.0.0.1 (``audio2face serve``, or the tiny-model
launcher with ``--unitalker-model``), or targets ``--url`` plus ``--pid``. Speech is
synthesised once with libespeak-ng. Each stream sends its utterance in 100 ms bodies at
real time through ``audio2face.client``, reads every frame, then starts the next
utterance on a new connection.

    python benchmarks/soak.py --streams 32 --minutes 30 --out benchmarks/results/soak

writes ``soak.json`` (every sample) and ``soak.md`` (a table per minute). The run
passes when RSS and FDs stay flat (last minute within 10 % / +8 of the second) and
there are no errors; the exit status says so.
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

from audio2face.client import Utterance, UtteranceOptions, V1Client
from audio2face.types import frames_for_samples

BODY_S = 0.1
FPS = 30.0
RATE = 16000
TEXT = (
    "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. "
    "How much wood would a woodchuck chuck if a woodchuck could chuck wood?"
)
SERVE_TINY = (
    "from audio2face.loading import load_unitalker_engine\n"
    "from audio2face.logs import configure_logging\n"
    "from audio2face.server.serve import serve\n"
    "from audio2face.settings import Settings\n"
    "s = Settings.load(); configure_logging(s)\n"
    "serve(s, engines={'unitalker': load_unitalker_engine(s)})\n"
)


@dataclass
class Minute:
    minute: int
    streams_done: int = 0
    frames: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    fds: int = 0

    def row(self) -> dict[str, float]:
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        return {
            "minute": self.minute, "streams_done": self.streams_done, "frames": self.frames,
            "errors": self.errors, "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 1),
            "p95_ms": round(float(np.percentile(lat, 95)) * 1e3, 1),
            "rss_mb": round(self.rss_mb, 1), "fds": self.fds,
        }  # fmt: skip


def speech_pcm() -> bytes:
    """A few seconds of espeak-ng speech (libespeak-ng, in process) as 16 kHz int16 PCM."""
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
               AUDIO2FACE_MAX_STREAMS=str(max(256, args.streams * 2)))  # fmt: skip
    if args.unitalker_model:
        env.update(AUDIO2FACE_UNITALKER_MODEL=str(args.unitalker_model),
                   AUDIO2FACE_DEFAULT_PROFILE="unitalker")  # fmt: skip
        cmd = [sys.executable, "-c", SERVE_TINY]
    else:
        cmd = [sys.executable, "-m", "audio2face.cli", "serve", "--port", str(port)]
    log = open(args.out.with_suffix(".server.log"), "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"127.0.0.1:{port}"


def wait_ready(host: str, proc: subprocess.Popen[bytes] | None, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see the .server.log")
        try:
            if httpx.get(f"http://{host}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in time")


async def one_utterance(client: V1Client, utterance: Utterance, minutes: list[Minute]) -> None:
    """Stream ``utterance`` paced at real time on a new connection; record each frame's
    latency (arrival minus the moment the audio it needs was sent, as ``bench``)."""
    from audio2face.bench import utterance_stats

    want = frames_for_samples(utterance.samples, RATE, FPS)
    result = await asyncio.wait_for(client.run(utterance), utterance.seconds + 60)
    if result.frames != want:
        raise RuntimeError(f"{result.frames} frames, expected {want}")
    stats = utterance_stats(
        result.sends, result.arrivals, result.end_sent, result.end_received, want
    )
    minutes[-1].latencies.extend(stats.latencies)
    minutes[-1].frames += result.frames
    minutes[-1].streams_done += 1


async def stream_loop(client: V1Client, utterance: Utterance, minutes: list[Minute], end: float,
                      offset: float) -> None:  # fmt: skip
    await asyncio.sleep(offset)  # stagger the starts
    while time.monotonic() < end:
        try:
            await one_utterance(client, utterance, minutes)
        except Exception as exc:  # noqa: BLE001 - every failure is a data point
            minutes[-1].errors += 1
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            await asyncio.sleep(1.0)


async def sampler(pid: int | None, minutes: list[Minute], t0: float, end: float,
                  samples: list[dict]) -> None:  # fmt: skip
    proc = None
    if pid is not None:
        import psutil

        proc = psutil.Process(pid)
    while time.monotonic() < end:
        await asyncio.sleep(5.0)
        elapsed = time.monotonic() - t0
        if proc is not None:
            rss = proc.memory_info().rss / 2**20
            fds = proc.num_fds()
            minutes[-1].rss_mb, minutes[-1].fds = rss, fds
            samples.append({"t_s": round(elapsed, 1), "rss_mb": round(rss, 1), "fds": fds})
        if elapsed >= 60 * len(minutes):
            minutes.append(Minute(len(minutes) + 1))


def report(args: argparse.Namespace, rows: list[dict], samples: list[dict], host: str) -> bool:
    errors = sum(r["errors"] for r in rows)
    ok = errors == 0
    if len(rows) >= 3 and samples:
        base, last = rows[1], rows[-1]
        ok = ok and last["rss_mb"] <= base["rss_mb"] * 1.10 and last["fds"] <= base["fds"] + 8
    doc = {"streams": args.streams, "minutes": args.minutes, "target": host,
           "engine": "unitalker (tiny test model)" if args.unitalker_model else "default",
           "passed": ok, "per_minute": rows, "samples": samples}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1))
    lines = [
        f"Soak: {args.streams} streams x {args.minutes:g} min, {doc['engine']} engine, "
        f"{'PASS' if ok else 'FAIL'}",
        "",
        "| minute | streams done | frames | errors | p50 ms | p95 ms | RSS MB | FDs |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {r['minute']} | {r['streams_done']} | {r['frames']} | {r['errors']} | "
          f"{r['p50_ms']} | {r['p95_ms']} | {r['rss_mb']} | {r['fds']} |" for r in rows],
    ]  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return ok


async def run(args: argparse.Namespace) -> bool:
    pcm = speech_pcm()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    proc = None
    if args.url:
        host, pid = args.url.split("://")[-1].split("/")[0], args.pid
    else:
        proc, host = start_server(args)
        pid = proc.pid
    try:
        await asyncio.to_thread(wait_ready, host, proc)
        client = V1Client(f"ws://{host}/api/v1/streaming_audio2face/ws")
        utterance = Utterance.from_pcm(pcm, UtteranceOptions(chunk_ms=BODY_S * 1000, pace=True))
        minutes = [Minute(1)]
        samples: list[dict] = []
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        utter_s = len(pcm) / 2 / RATE
        tasks = [stream_loop(client, utterance, minutes, end, i * utter_s / args.streams)
                 for i in range(args.streams)]  # fmt: skip
        await asyncio.gather(sampler(pid, minutes, t0, end, samples), *tasks)
        if pid is not None:  # streams that ran past the end: sample once more
            import psutil

            server = psutil.Process(pid)
            minutes[-1].rss_mb, minutes[-1].fds = server.memory_info().rss / 2**20, server.num_fds()
        rows = [m.row() for m in minutes if m.streams_done or m.errors]
        return report(args, rows, samples, host)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=32)
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--url", help="target a running server (ws://127.0.0.1:PORT/...)")
    p.add_argument("--pid", type=int, help="with --url: the server's pid, for RSS and FDs")
    p.add_argument(
        "--unitalker-model",
        type=Path,
        help="serve this UniTalker-signature model instead of the default engine",
    )
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/soak"))
    args = p.parse_args()
    if args.url and not args.url.split("://")[-1].startswith(("127.0.0.1", "localhost")):
        raise SystemExit("soak targets only 127.0.0.1")
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()

"""``audio2face bench``: latency and throughput of a real server under N paced streams.

It starts ``python -m audio2face.cli serve`` (one server per ``--modes`` entry, with
``AUDIO2FACE_*`` settings from ``--set``) on a free loopback port, or targets ``--url``,
and for each N in ``--streams`` drives N concurrent protocol v1 streams of real speech
(asterisk prompts, 8 kHz GSM resampled to 16 kHz), each paced in real time in 40 ms
bodies. Stream starts are spread over ``--stagger`` seconds, as real users are.

Per N it reports per-frame latency p50/p95/p99 (arrival of frame ``i`` minus the wall
time at which the body holding frame ``i``'s last sample was sent), first-frame latency
(first frame minus first body sent), latency after End (last frame minus End sent),
frames received / ``round(seconds * 30)``, errors, server CPU (cores, from /proc) and
the mean micro-batch size (from ``/metrics``). The largest N with p95 <= ``--p95-bound``,
no error and an exact frame count is the capacity. JSON and Markdown go to ``--out``.

    audio2face bench --set unitalker_model=benchmarks/models/unitalker_like.onnx \\
        --set default_profile=unitalker --modes window,segment --streams 1,2,4,8,12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

SPEECH_GLOB_ROOT = Path("/usr/share/asterisk/sounds")
WIRE_RATE = 16000
FPS = 30.0
WS_PATH = "/api/v1/streaming_audio2face/ws"


# --- speech ---------------------------------------------------------------------------


def load_speech(max_files: int = 200) -> np.ndarray:
    """Asterisk's English prompts, concatenated in name order, as 16 kHz int16."""
    import soundfile as sf

    from audio2face.audio.resample import resample

    files = sorted(SPEECH_GLOB_ROOT.glob("en*/*.gsm"))[:max_files]
    if not files:
        raise SystemExit(f"no speech found under {SPEECH_GLOB_ROOT}/en*/ (asterisk-core-sounds-en)")
    parts = [sf.read(str(p), format="RAW", subtype="GSM610", samplerate=8000, channels=1,
                     dtype="float32")[0] for p in files]  # fmt: skip
    audio = resample(np.concatenate(parts), 8000, WIRE_RATE)
    return (np.clip(audio, -1.0, 1.0 - 1 / 32768) * 32768).astype("<i2")


# --- one stream -----------------------------------------------------------------------


@dataclass
class StreamStats:
    frames: int
    expected: int
    latencies: list[float]
    first_frame_s: float | None
    after_end_s: float | None
    error: str | None = None


def _messages(pcm: np.ndarray, chunk: int, profile: str) -> tuple[bytes, list[bytes], bytes]:
    from audio2face.protocol.v1 import Request, RequestKind

    start = Request(class_name=RequestKind.START.value, sample_rate=WIRE_RATE, sample_width=2,
                    n_channels=1, profile_name=profile,
                    response_chunk_n_frames=10).SerializeToString()  # fmt: skip
    raw = pcm.tobytes()
    bodies = [Request(class_name=RequestKind.BODY.value, pcm_bytes=raw[i : i + 2 * chunk])
              .SerializeToString() for i in range(0, len(raw), 2 * chunk)]  # fmt: skip
    return start, bodies, Request(class_name=RequestKind.END.value).SerializeToString()


async def run_stream(url: str, pcm: np.ndarray, delay: float, chunk_ms: float,
                     profile: str) -> StreamStats:  # fmt: skip
    """One paced utterance; latencies from send and arrival times (pre-encoded bodies,
    so the client spends its time on the socket, not on protobuf)."""
    import websockets

    from audio2face.protocol.v1 import DTYPES, Response, ResponseKind
    from audio2face.types import frames_for_samples

    chunk = int(WIRE_RATE * chunk_ms / 1000)
    start_msg, bodies, end_msg = _messages(pcm, chunk, profile)
    expected = frames_for_samples(len(pcm), WIRE_RATE, FPS)
    sent = np.zeros(len(bodies))
    arrivals: list[tuple[float, int]] = []
    end_sent = [0.0]
    await asyncio.sleep(delay)
    try:
        async with websockets.connect(url, max_size=None, compression=None,
                                      open_timeout=60, ping_interval=None) as ws:  # fmt: skip

            async def read() -> None:
                width, total = 0, 0
                async for message in ws:
                    resp = Response()
                    resp.ParseFromString(message)
                    if resp.class_name == ResponseKind.START:
                        width = DTYPES[resp.dtype].itemsize * len(resp.blendshape_names)
                    elif resp.class_name == ResponseKind.BODY:
                        total += len(resp.data) // width
                        arrivals.append((time.monotonic(), total))
                    elif resp.class_name == ResponseKind.END:
                        arrivals.append((time.monotonic(), total))
                        return
                raise RuntimeError(f"closed {ws.close_code}: {ws.close_reason}")

            reader = asyncio.create_task(read())
            await ws.send(start_msg)
            t0 = time.monotonic()
            for i, body in enumerate(bodies):
                pause = t0 + i * chunk_ms / 1000 - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                await ws.send(body)
                sent[i] = time.monotonic()
            await ws.send(end_msg)
            end_sent[0] = time.monotonic()
            await reader
    except Exception as exc:
        return StreamStats(0, expected, [], None, None, f"{type(exc).__name__}: {exc}")
    return _stats(arrivals, sent, end_sent[0], chunk, expected)


def _stats(arrivals: list[tuple[float, int]], sent: np.ndarray, end_sent: float, chunk: int,
           expected: int) -> StreamStats:  # fmt: skip
    lat: list[float] = []
    prev = 0
    last_body = len(sent) - 1
    for t, total in arrivals:
        k = np.arange(prev, total)
        end_sample = np.floor((k + 1) * WIRE_RATE / FPS + 0.5).astype(np.int64)
        body = np.minimum((end_sample - 1) // chunk, last_body)
        lat.extend((t - sent[body]).tolist())
        prev = total
    first = next((t for t, n in arrivals if n > 0), None)
    return StreamStats(
        frames=prev, expected=expected, latencies=lat,
        first_frame_s=None if first is None else first - sent[0],
        after_end_s=arrivals[-1][0] - end_sent if arrivals else None,
    )  # fmt: skip


async def _run_many(url: str, jobs: list[tuple[np.ndarray, float]], chunk_ms: float,
                    profile: str) -> list[StreamStats]:  # fmt: skip
    return list(await asyncio.gather(*(run_stream(url, p, d, chunk_ms, profile) for p, d in jobs)))


def _client_process(args: tuple[str, list[tuple[np.ndarray, float]], float, str]) -> list[dict]:
    url, jobs, chunk_ms, profile = args
    return [asdict(s) for s in asyncio.run(_run_many(url, jobs, chunk_ms, profile))]


# --- the server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m audio2face.cli serve`` with ``AUDIO2FACE_*`` settings, until closed."""

    def __init__(self, settings: dict[str, str], log_path: Path, cmd: list[str]) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update({f"AUDIO2FACE_{k.upper()}": v for k, v in settings.items()})
        env.update(AUDIO2FACE_HOST="127.0.0.1", AUDIO2FACE_PORT=str(self.port),
                   AUDIO2FACE_SHUTDOWN_DRAIN_S="0")  # fmt: skip
        self.log = open(log_path, "w")  # noqa: SIM115 (kept open for the server's life)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        self.url = f"ws://127.0.0.1:{self.port}{WS_PATH}"
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"server not ready after 180 s; see {log_path}") from None
                time.sleep(0.3)

    def cpu_seconds(self) -> float:
        """CPU time of the server and its worker processes (``--workers``)."""
        return sum(_proc_cpu_seconds(pid) for pid in _process_tree(self.proc.pid))

    def close(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _metric_sums(http_base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{http_base}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for name in ("a2f_batch_size_sum", "a2f_batch_size_count", "a2f_inference_seconds_sum",
                 "a2f_inference_seconds_count"):
        out[name] = sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))
    return out


# --- one step -------------------------------------------------------------------------


def run_step(url: str, speech: np.ndarray, n: int, args: argparse.Namespace,
             server: ServerProcess | None) -> dict:  # fmt: skip
    seconds = args.seconds
    length = int(seconds * WIRE_RATE)
    rng = np.random.default_rng(n)
    jobs = []
    for k in range(n):  # different speech per stream, starts spread over --stagger
        off = int((k * 7.3 * WIRE_RATE) % max(1, len(speech) - length))
        jobs.append((speech[off : off + length], float(rng.uniform(0, args.stagger))))
    http = url.replace("ws://", "http://").split("/api/")[0]
    m0 = _metric_sums(http)
    cpu0 = server.cpu_seconds() if server else 0.0
    c0, t0 = os.times(), time.monotonic()
    procs = max(1, min(args.client_procs, n))
    if procs == 1:
        stats = asyncio.run(_run_many(url, jobs, args.chunk_ms, args.profile))
    else:
        parts = [(url, jobs[i::procs], args.chunk_ms, args.profile) for i in range(procs)]
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            stats = [StreamStats(**d) for part in pool.map(_client_process, parts) for d in part]
    wall = time.monotonic() - t0
    c1 = os.times()
    client_cpu = (c1.user + c1.system + c1.children_user + c1.children_system
                  - c0.user - c0.system - c0.children_user - c0.children_system)  # fmt: skip
    m1 = _metric_sums(http)
    lat = np.array([x for s in stats for x in s.latencies]) if stats else np.zeros(0)
    errors = [s.error for s in stats if s.error]
    ratio = [s.frames / s.expected for s in stats if s.expected]
    frames_exact = all(abs(s.frames - s.expected) <= 1 for s in stats)
    batches = m1["a2f_batch_size_count"] - m0["a2f_batch_size_count"]
    infer_s = m1["a2f_inference_seconds_sum"] - m0["a2f_inference_seconds_sum"]
    infer_n = m1["a2f_inference_seconds_count"] - m0["a2f_inference_seconds_count"]

    def pct(values: list[float] | np.ndarray, q: float) -> float | None:
        return round(float(np.percentile(values, q)), 4) if len(values) else None

    first = [s.first_frame_s for s in stats if s.first_frame_s is not None]
    after = [s.after_end_s for s in stats if s.after_end_s is not None]
    p95 = pct(lat, 95)
    return {
        "streams": n, "seconds": seconds,
        "p50": pct(lat, 50), "p95": p95, "p99": pct(lat, 99),
        "first_frame_p50": pct(first, 50), "first_frame_p95": pct(first, 95),
        "after_end_p50": pct(after, 50), "after_end_p95": pct(after, 95),
        "frame_ratio_min": round(min(ratio), 4) if ratio else None,
        "frame_ratio_max": round(max(ratio), 4) if ratio else None,
        "frames_exact": frames_exact, "errors": len(errors), "error_samples": errors[:3],
        "server_cpu_cores": round(((server.cpu_seconds() if server else 0.0) - cpu0) / wall, 3),
        "client_cpu_cores": round(client_cpu / wall, 3), "client_procs": procs,
        "mean_batch_size": round((m1["a2f_batch_size_sum"] - m0["a2f_batch_size_sum"]) / batches, 2)
        if batches else None,
        "inference_busy_cores": round(infer_s / wall, 3),
        "mean_inference_s": round(infer_s / infer_n, 4) if infer_n else None,
        "load_1min_after": round(os.getloadavg()[0], 2),
        "meets_bound": bool(p95 is not None and p95 <= args.p95_bound and not errors
                            and frames_exact),
    }  # fmt: skip


# --- driver and report ----------------------------------------------------------------


def run_mode(mode: str, args: argparse.Namespace, speech: np.ndarray, out_dir: Path) -> dict:
    settings = dict(kv.split("=", 1) for kv in args.set)
    if mode != "as-set":
        settings["unitalker_mode"] = mode
    cmd = shlex.split(args.server_cmd) if args.server_cmd else [
        sys.executable, "-m", "audio2face.cli", "serve"]
    server = None if args.url else ServerProcess(settings, out_dir / f"server-{mode}.log", cmd)
    url = args.url or (server.url if server else "")
    steps: list[dict] = []
    try:
        # Warm-up: one short stream so arenas and caches do not count against N=1.
        asyncio.run(run_stream(url, speech[: 3 * WIRE_RATE], 0.0, args.chunk_ms, args.profile))
        for n in args.streams:
            step = run_step(url, speech, n, args, server)
            steps.append(step)
            print(json.dumps({"mode": mode, **{k: v for k, v in step.items()
                                               if k != "error_samples"}}), flush=True)  # fmt: skip
            if not step["meets_bound"] and not args.keep_going and step["p95"] is not None \
                    and step["p95"] > 2 * args.p95_bound:  # fmt: skip
                break
    finally:
        if server:
            server.close()
    ok = [s["streams"] for s in steps if s["meets_bound"]]
    return {"mode": mode, "settings": settings, "steps": steps,
            "max_streams_within_bound": max(ok) if ok else 0}  # fmt: skip


def markdown(result: dict) -> str:
    lines = [f"p95 bound {result['p95_bound']} s; {result['seconds']} s utterances, "
             f"{result['chunk_ms']:g} ms bodies; machine: {result['machine']}", "",
             "| mode | N | p50 s | p95 s | p99 s | first frame p50 s | after End p95 s | "
             "frames recv/expected | errors | server CPU (cores) | client CPU | mean batch | "
             "within bound |", "|" + "---|" * 13]  # fmt: skip
    for run in result["runs"]:
        for s in run["steps"]:
            lines.append(
                f"| {run['mode']} | {s['streams']} | {s['p50']} | {s['p95']} | {s['p99']} | "
                f"{s['first_frame_p50']} | {s['after_end_p95']} | "
                f"{s['frame_ratio_min']}–{s['frame_ratio_max']} | {s['errors']} | "
                f"{s['server_cpu_cores']} | {s['client_cpu_cores']} | {s['mean_batch_size']} | "
                f"{'yes' if s['meets_bound'] else 'no'} |"
            )
    lines.append("")
    for run in result["runs"]:
        lines.append(f"- **{run['mode']}**: largest N within the bound: "
                     f"**{run['max_streams_within_bound']}**")  # fmt: skip
    return "\n".join(lines) + "\n"


def _stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _proc_cpu_seconds(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
    except OSError:  # it exited meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1).strip() if found else "unknown CPU"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="audio2face bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--url", help="target this server instead of starting one")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="server setting (AUDIO2FACE_KEY), repeatable")  # fmt: skip
    ap.add_argument("--modes", default="as-set",
                    help="comma list of unitalker_mode values, one server each "
                    "(as-set: leave it to --set)")  # fmt: skip
    ap.add_argument("--streams", default="1,2,4,8", help="comma list of N, increasing")
    ap.add_argument("--p95-bound", type=float, default=1.0, help="seconds")
    ap.add_argument("--seconds", type=float, default=15.0, help="utterance length per stream")
    ap.add_argument("--chunk-ms", type=float, default=40.0)
    ap.add_argument("--stagger", type=float, default=1.0, help="spread of stream starts, s")
    ap.add_argument("--profile", default="", help="profile_name sent in Start")
    ap.add_argument("--server-cmd", help="instead of `python -m audio2face.cli serve`")
    ap.add_argument("--client-procs", type=int, default=1, help="client processes")
    ap.add_argument("--keep-going", action="store_true", help="run every N even past 2x bound")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/latency"),
                    help="writes OUT.json and OUT.md")  # fmt: skip
    args = ap.parse_args(argv)
    args.streams = [int(x) for x in args.streams.split(",") if x]
    args.modes = [m for m in args.modes.split(",") if m]
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns 0 when every mode met the bound at its first N."""
    args = parse_args(argv)
    speech = load_speech()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{_cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start"
    logs = Path(tempfile.mkdtemp(prefix="a2f-bench-"))  # server logs, kept for post-mortems
    runs = [run_mode(m, args, speech, logs) for m in args.modes]
    result = {"p95_bound": args.p95_bound, "seconds": args.seconds, "chunk_ms": args.chunk_ms,
              "stagger": args.stagger, "machine": machine,
              "load_after": round(os.getloadavg()[0], 2), "argv": argv, "runs": runs}  # fmt: skip
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(r["max_streams_within_bound"] > 0 for r in runs) else 1

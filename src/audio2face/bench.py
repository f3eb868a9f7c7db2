"""``audio2face bench``: latency and throughput of a real server under N paced streams.

It starts ``python -m audio2face.cli serve`` (one server per ``--modes`` entry, with
``AUDIO2FACE_*`` settings from ``--set``) on a free loopback port, or targets ``--url``.
For each N in ``--streams`` it drives N concurrent streams of speech, each paced in
real time in ``--chunk-ms`` bodies, starts spread over ``--stagger`` seconds. A stream
is one utterance of ``--seconds`` (``--utterances one``), or back-to-back utterances of
2-6 s (``--short-seconds``), each on a new connection as v1 clients talk
(``--utterances short``). Speech: ``--wav`` (a file, or a folder of files played in
name order), else a clip synthesised with libespeak-ng.

Per N it reports per-frame latency p50/p95/p99 (arrival of frame ``i`` minus the time
the body holding frame ``i``'s last sample was sent), first-frame latency, latency
after End, connection set-up time, frames received / ``round(seconds * 30)``, errors,
server CPU (cores, from /proc) and the mean micro-batch size (from ``/metrics``). The
largest N with p95 <= ``--p95-bound``, no error and exact frame counts is the capacity.
Results are printed; ``--out PREFIX`` also writes PREFIX.json and PREFIX.md. Streams
speak ``--protocol`` (v1 or v2; each protocol is a route and a client driver in ``PROTOCOLS``).

    audio2face bench --set workers=2 --streams 50,100,150 --utterances short --p95-bound 0.15
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audio2face.errors import Audio2FaceError, ConfigError

DESCRIPTION = __doc__
WIRE_RATE = 16000
FPS = 30.0
SPEECH_TEXT = (
    ("en-us", "The quick brown fox jumps over the lazy dog, and then it runs away."),
    ("en", "She sells sea shells by the sea shore; the shells she sells are surely seashells."),
    ("en-us+f3", "How much wood would a woodchuck chuck if a woodchuck could chuck wood?"),
    ("en-us+m3", "Please call Stella. Ask her to bring these things with her from the store."),
    (
        "en-gb-x-rp+f2",
        "Six spoons of fresh snow peas, five thick slabs of blue cheese, and a snack.",
    ),
    ("en-us", "We also need a small plastic snake and a big toy frog for the kids."),
    ("en-us+f4", "Bob bought a big blue balloon, but my mother made warm muffins at home."),
    ("en-029", "Whether the weather is warm or cold, we will walk to the village at noon."),
)
SPEECH_GAP_S = 0.35
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".gsm")


# --- speech ---------------------------------------------------------------------------


def load_speech(wav: Path | None = None) -> np.ndarray:
    """Speech as 16 kHz int16: ``wav`` (a file, or every audio file of a folder in name
    order), else the sentences above spoken by libespeak-ng with short pauses."""
    from audio2face.audio.resample import resample

    if wav is not None:
        parts = [resample(*_read(p), WIRE_RATE) for p in _audio_files(wav)]
        audio = np.concatenate(parts)
    else:
        from audio2face.runtime import speak

        parts = []
        for voice, text in SPEECH_TEXT:
            speech = speak(text, voice, hint="or pass --wav FILE (bench needs speech)")
            parts += [resample(speech.audio, speech.sample_rate, WIRE_RATE),
                      np.zeros(int(SPEECH_GAP_S * WIRE_RATE), np.float32)]  # fmt: skip
        audio = np.concatenate(parts)
    if audio.size < WIRE_RATE // 10:
        raise ConfigError(f"--wav {wav}: under 0.1 s of audio; the benchmark needs speech")
    return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype("<i2")


def _audio_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        if not files:
            raise ConfigError(f"--wav {path}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it")
        return files
    if not path.is_file():
        raise ConfigError(f"--wav {path}: no such file; give an audio file or a folder of them")
    return [path]


def _read(path: Path) -> tuple[np.ndarray, int]:
    if path.suffix.lower() == ".gsm":  # headerless GSM 6.10 at 8 kHz (Asterisk prompts)
        import soundfile as sf

        data = sf.read(str(path), format="RAW", subtype="GSM610", samplerate=8000, channels=1,
                       dtype="float32")[0]  # fmt: skip
        return data, 8000
    from audio2face.audio.wav import read_audio

    return read_audio(path)


def take(speech: np.ndarray, offset: int, length: int) -> bytes:
    """``length`` samples from ``offset``, wrapping around a short clip."""
    idx = (offset + np.arange(length)) % len(speech)
    return speech[idx].tobytes()


# --- one utterance, per protocol ------------------------------------------------------


@dataclass
class UtteranceStats:
    frames: int
    expected: int
    latencies: list[float]
    first_frame_s: float | None
    after_end_s: float | None
    connect_s: float | None = None
    error: str | None = None


def utterance_stats(sends: list[tuple[float, int]], arrivals: list[tuple[float, int]],
                    end_sent: float | None, end_received: float | None,
                    expected: int) -> UtteranceStats:  # fmt: skip
    """Per-frame latency: frame ``k`` needs the audio up to its last sample
    ``floor((k + 1) * rate / fps + 0.5) - 1``; its latency is its arrival minus the
    send time of the body that held that sample."""
    lat: list[float] = []
    prev = 0
    if sends:
        sent_t = np.array([t for t, _ in sends])
        after = np.array([n for _, n in sends])
        for t, total in arrivals:
            k = np.arange(prev, total)
            end_sample = np.floor((k + 1) * WIRE_RATE / FPS + 0.5).astype(np.int64)
            body = np.minimum(np.searchsorted(after, end_sample, side="left"), len(after) - 1)
            lat.extend((t - sent_t[body]).tolist())
            prev = total
    first = next((t for t, n in arrivals if n > 0), None)
    return UtteranceStats(
        frames=arrivals[-1][1] if arrivals else 0, expected=expected, latencies=lat,
        first_frame_s=None if first is None or not sends else first - sends[0][0],
        after_end_s=None if end_sent is None or end_received is None else end_received - end_sent,
    )  # fmt: skip


@dataclass(frozen=True)
class Target:
    """Where the streams go; picklable, for client processes."""

    url: str
    token: str | None
    profile: str
    chunk_ms: float


class Driver(Protocol):
    """One protocol's client: a paced utterance on a new connection, measured."""

    async def utterance(self, pcm: bytes) -> UtteranceStats: ...


class V1Driver:
    """Protocol v1 through :mod:`audio2face.client` (utterances encoded before connecting,
    so the client spends its time on the socket, not on protobuf)."""

    def __init__(self, target: Target) -> None:
        from audio2face.client import UtteranceOptions, V1Client

        self.client = V1Client(url=target.url, token=target.token)
        self.options = UtteranceOptions(profile=target.profile, chunk_ms=target.chunk_ms, pace=True)

    async def utterance(self, pcm: bytes) -> UtteranceStats:
        from audio2face.client import ClientError, Utterance
        from audio2face.types import frames_for_samples

        utt = Utterance.from_pcm(pcm, self.options)
        expected = frames_for_samples(utt.samples, WIRE_RATE, FPS)
        try:
            r = await self.client.run(utt)
        except (ClientError, OSError) as exc:
            return UtteranceStats(0, expected, [], None, None, error=f"{type(exc).__name__}: {exc}")
        stats = utterance_stats(r.sends, r.arrivals, r.end_sent, r.end_received, expected)
        stats.connect_s = r.connect_s
        return stats


class V2Driver:
    """Protocol v2 through :mod:`audio2face.client_v2`: the same paced utterance on a new
    connection (PCM messages, then ``flush`` and ``end``), binary frames."""

    def __init__(self, target: Target) -> None:
        from audio2face.client_v2 import V2Client, V2Options

        self.client = V2Client(url=target.url, token=target.token)
        self.options = V2Options(profile=target.profile or None, output="binary")
        self.chunk_ms = target.chunk_ms

    async def utterance(self, pcm: bytes) -> UtteranceStats:
        from audio2face.client import ClientError
        from audio2face.types import frames_for_samples

        expected = frames_for_samples(len(pcm) // 2, WIRE_RATE, FPS)
        try:
            r = await self.client.run([pcm], self.options, chunk_ms=self.chunk_ms, pace=True)
        except (ClientError, OSError) as exc:
            return UtteranceStats(0, expected, [], None, None, error=f"{type(exc).__name__}: {exc}")
        stats = utterance_stats(r.sends, r.arrivals, r.end_sent, r.end_received, expected)
        stats.connect_s = r.connect_s
        return stats


@dataclass(frozen=True)
class WireProtocol:
    """A protocol bench speaks: its route on the server and its client."""

    path: str
    driver: Callable[[Target], Driver]


PROTOCOLS: dict[str, WireProtocol] = {
    "v1": WireProtocol("/api/v1/streaming_audio2face/ws", V1Driver),
    "v2": WireProtocol("/api/v2/stream", V2Driver),
}
"""``--protocol`` choices; a new protocol is one more entry."""


@dataclass(frozen=True)
class StreamJob:
    delay_s: float
    utterances: tuple[bytes, ...]


async def run_stream(driver: Driver, job: StreamJob) -> list[UtteranceStats]:
    """One stream: its utterances back to back, each on a new connection."""
    await asyncio.sleep(job.delay_s)
    return [await driver.utterance(pcm) for pcm in job.utterances]


async def _run_many(protocol: str, target: Target, jobs: list[StreamJob]) -> list[UtteranceStats]:
    driver = PROTOCOLS[protocol].driver(target)
    per_stream = await asyncio.gather(*(run_stream(driver, job) for job in jobs))
    return [s for stream in per_stream for s in stream]


def _client_process(args: tuple[str, Target, list[StreamJob]]) -> list[dict]:
    return [asdict(s) for s in asyncio.run(_run_many(*args))]


def make_jobs(speech: np.ndarray, n: int, args: argparse.Namespace) -> list[StreamJob]:
    """Different speech per stream; starts spread over ``--stagger``; in short mode,
    utterance lengths drawn from ``--short-seconds`` until ``--seconds`` are covered."""
    rng = np.random.default_rng(n)
    jobs = []
    for k in range(n):
        offset = int(k * 7.3 * WIRE_RATE)
        if args.utterances == "one":
            lengths = [args.seconds]
        else:
            lengths, total = [], 0.0
            while total < args.seconds:
                lengths.append(float(rng.uniform(*args.short_seconds)))
                total += lengths[-1]
        pcms = []
        for seconds in lengths:
            pcms.append(take(speech, offset, int(seconds * WIRE_RATE)))
            offset += int(seconds * WIRE_RATE)
        jobs.append(StreamJob(float(rng.uniform(0, args.stagger)), tuple(pcms)))
    return jobs


# --- the server -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m audio2face.cli serve`` with ``AUDIO2FACE_*`` settings, until closed."""

    def __init__(self, settings: dict[str, str], log_path: Path, cmd: list[str],
                 ready_timeout_s: float = 180.0) -> None:  # fmt: skip
        self.port = free_port()
        env = dict(os.environ)
        env.update({f"AUDIO2FACE_{k.upper()}": v for k, v in settings.items()})
        env.update(AUDIO2FACE_HOST="127.0.0.1", AUDIO2FACE_PORT=str(self.port),
                   AUDIO2FACE_SHUTDOWN_DRAIN_S="0")  # fmt: skip
        self.log = open(log_path, "w")  # noqa: SIM115 (kept open for the server's life)
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        self.base = f"ws://127.0.0.1:{self.port}"
        deadline = time.monotonic() + ready_timeout_s
        while True:
            if self.proc.poll() is not None:
                self.log.close()
                raise ConfigError(f"the server exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise ConfigError(f"server not ready after {ready_timeout_s:g} s; "
                                      f"see {log_path}") from None  # fmt: skip
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


METRIC_SUMS = ("a2f_batch_size_sum", "a2f_batch_size_count", "a2f_inference_seconds_sum",
               "a2f_inference_seconds_count")  # fmt: skip


def _metric_sums(url: str, token: str | None) -> dict[str, float] | None:
    """Totals from the server's ``/metrics``; None when it has none to give."""
    parts = re.match(r"^ws(s?)://([^/?#]+)", url)
    if parts is None:
        return None
    request = urllib.request.Request(f"http{parts.group(1)}://{parts.group(2)}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    return {name: sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))
            for name in METRIC_SUMS}  # fmt: skip


# --- one step -------------------------------------------------------------------------


def _pct(values: list[float] | np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if len(values) else None


def run_step(target: Target, speech: np.ndarray, n: int, args: argparse.Namespace,
             server: ServerProcess | None) -> dict:  # fmt: skip
    jobs = make_jobs(speech, n, args)
    m0 = _metric_sums(target.url, target.token)
    cpu0 = server.cpu_seconds() if server else 0.0
    c0, t0 = os.times(), time.monotonic()
    procs = max(1, min(args.client_procs, n))
    if procs == 1:
        stats = asyncio.run(_run_many(args.protocol, target, jobs))
    else:
        parts = [(args.protocol, target, jobs[i::procs]) for i in range(procs)]
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            stats = [UtteranceStats(**d) for part in pool.map(_client_process, parts) for d in part]
    wall = time.monotonic() - t0
    c1 = os.times()
    client_cpu = (c1.user + c1.system + c1.children_user + c1.children_system
                  - c0.user - c0.system - c0.children_user - c0.children_system)  # fmt: skip
    m1 = _metric_sums(target.url, target.token)
    lat = np.array([x for s in stats for x in s.latencies])
    errors = [s.error for s in stats if s.error]
    ratio = [s.frames / s.expected for s in stats if s.expected]
    frames_exact = all(s.frames == s.expected for s in stats)
    first = [s.first_frame_s for s in stats if s.first_frame_s is not None]
    after = [s.after_end_s for s in stats if s.after_end_s is not None]
    connect = [s.connect_s for s in stats if s.connect_s is not None]
    d = {k: m1[k] - m0[k] for k in METRIC_SUMS} if m0 and m1 else None
    p95 = _pct(lat, 95)
    return {
        "streams": n, "utterances": len(stats), "seconds": args.seconds,
        "p50": _pct(lat, 50), "p95": p95, "p99": _pct(lat, 99),
        "first_frame_p50": _pct(first, 50), "first_frame_p95": _pct(first, 95),
        "after_end_p50": _pct(after, 50), "after_end_p95": _pct(after, 95),
        "connect_p50": _pct(connect, 50), "connect_p95": _pct(connect, 95),
        "frame_ratio_min": round(min(ratio), 4) if ratio else None,
        "frame_ratio_max": round(max(ratio), 4) if ratio else None,
        "frames_exact": frames_exact, "errors": len(errors), "error_samples": errors[:3],
        "server_cpu_cores": round(((server.cpu_seconds() if server else 0.0) - cpu0) / wall, 3),
        "client_cpu_cores": round(client_cpu / wall, 3), "client_procs": procs,
        "mean_batch_size": round(d["a2f_batch_size_sum"] / d["a2f_batch_size_count"], 2)
        if d and d["a2f_batch_size_count"] else None,
        "inference_busy_cores": round(d["a2f_inference_seconds_sum"] / wall, 3) if d else None,
        "mean_inference_s": round(d["a2f_inference_seconds_sum"] / d["a2f_inference_seconds_count"], 4)
        if d and d["a2f_inference_seconds_count"] else None,
        "load_1min_after": round(os.getloadavg()[0], 2),
        "meets_bound": bool(p95 is not None and p95 <= args.p95_bound and not errors
                            and frames_exact),
    }  # fmt: skip


# --- driver and report ----------------------------------------------------------------


def run_mode(mode: str, args: argparse.Namespace, speech: np.ndarray, logs: Path) -> dict:
    """Every N of ``--streams`` against one server (``logs``: its log's path prefix)."""
    settings = dict(kv.split("=", 1) for kv in args.set)
    if mode != "as-set":
        settings["unitalker_mode"] = mode
    cmd = shlex.split(args.server_cmd) if args.server_cmd else [
        sys.executable, "-m", "audio2face.cli", "serve"]  # fmt: skip
    server = None
    url = args.url
    if not url:
        server = ServerProcess(settings, Path(f"{logs}.server-{mode}.log"), cmd)
        url = f"{server.base}{PROTOCOLS[args.protocol].path}"
    target = Target(url, args.token, args.profile, args.chunk_ms)
    steps: list[dict] = []
    try:
        # Warm-up: one short stream so arenas and caches do not count against the first N.
        warm_up = [StreamJob(0.0, (take(speech, 0, 3 * WIRE_RATE),))]
        warm = asyncio.run(_run_many(args.protocol, target, warm_up))
        if warm[0].error:
            raise ConfigError(f"the warm-up stream to {url} failed: {warm[0].error}")
        for n in args.streams:
            step = run_step(target, speech, n, args, server)
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
    shape = ("one utterance per stream" if result.get("utterances", "one") == "one" else
             "short utterances of {}-{} s, a new connection each".format(*result["short_seconds"]))  # fmt: skip
    lines = [f"p95 bound {result['p95_bound']} s; {result['seconds']} s per stream, {shape}, "
             f"{result['chunk_ms']:g} ms bodies; machine: {result['machine']}", "",
             "| mode | N | utterances | p50 s | p95 s | p99 s | first frame p50 s | "
             "after End p95 s | connect p95 s | frames recv/expected | errors | "
             "server CPU (cores) | client CPU | mean batch | within bound |",
             "|" + "---|" * 15]  # fmt: skip
    for run in result["runs"]:
        for s in run["steps"]:
            lines.append(
                f"| {run['mode']} | {s['streams']} | {s.get('utterances', s['streams'])} | "
                f"{s['p50']} | {s['p95']} | {s['p99']} | {s['first_frame_p50']} | "
                f"{s['after_end_p95']} | {s.get('connect_p95')} | "
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


# --- options --------------------------------------------------------------------------


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _stream_counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give stream counts like 1,2,4,8") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give stream counts >= 1, like 1,2,4,8")
    return counts


def _seconds_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give MIN,MAX seconds, like 2,6") from None
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 < MIN <= MAX")
    return lo, hi


def _modes(text: str) -> list[str]:
    modes = [m for m in text.split(",") if m]
    known = ("as-set", "window", "segment")
    bad = [m for m in modes if m not in known]
    if bad or not modes:
        raise argparse.ArgumentTypeError(f"unknown mode(s) {bad or [text]}; known: {list(known)}")
    return modes


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of ``audio2face bench`` (also ``python benchmarks/latency.py``)."""
    target = ap.add_argument_group("server")
    target.add_argument("--url", help="target this running server instead of starting one")
    target.add_argument("--token", help="auth token, sent as an Authorization header")
    target.add_argument("--protocol", choices=sorted(PROTOCOLS), default="v1",
                        help="wire protocol of the streams (default: %(default)s)")  # fmt: skip
    target.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="server setting (as AUDIO2FACE_KEY), repeatable; not with --url")  # fmt: skip
    target.add_argument("--modes", type=_modes, default=["as-set"],
                        help="comma list of unitalker_mode values (window, segment), one server "
                        "each; as-set: leave it to --set (default)")  # fmt: skip
    target.add_argument("--server-cmd", help="instead of `python -m audio2face.cli serve`")
    load = ap.add_argument_group("load")
    load.add_argument("--streams", type=_stream_counts, default=[1, 2, 4, 8],
                      help="comma list of concurrent stream counts, increasing (default: 1,2,4,8)")  # fmt: skip
    load.add_argument("--seconds", type=_positive(float), default=15.0,
                      help="audio per stream, s (default: %(default)s)")  # fmt: skip
    load.add_argument("--utterances", choices=("one", "short"), default="one",
                      help="one: a stream is one utterance; short: back-to-back utterances of "
                      "--short-seconds, each on a new connection (default: %(default)s)")  # fmt: skip
    load.add_argument("--short-seconds", type=_seconds_range, default=(2.0, 6.0), metavar="MIN,MAX",
                      help="utterance length range in short mode (default: 2,6)")  # fmt: skip
    load.add_argument("--chunk-ms", type=_positive(float), default=40.0,
                      help="audio per body, ms, sent in real time (default: %(default)s)")  # fmt: skip
    load.add_argument("--stagger", type=_non_negative, default=1.0,
                      help="stream starts spread over this many s (default: %(default)s)")  # fmt: skip
    load.add_argument("--profile", default="", help="profile name sent in Start")
    load.add_argument("--wav", type=Path,
                      help="speech to send: a file, or a folder of audio files (default: a clip "
                      "synthesised with libespeak-ng)")  # fmt: skip
    load.add_argument("--client-procs", type=_positive(int), default=1,
                      help="client processes (default: %(default)s)")  # fmt: skip
    verdict = ap.add_argument_group("verdict and output")
    verdict.add_argument("--p95-bound", type=_positive(float), default=1.0,
                         help="p95 per-frame latency bound, s (default: %(default)s)")  # fmt: skip
    verdict.add_argument("--keep-going", action="store_true",
                         help="run every N even past twice the bound")  # fmt: skip
    verdict.add_argument("--out", type=Path, metavar="PREFIX",
                         help="also write PREFIX.json and PREFIX.md (and the server logs beside "
                         "them); without it nothing is written but temporary server logs")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when every mode met the bound at some N, else 1."""
    if args.url and args.set:
        raise ConfigError("--set configures the server bench starts; with --url, set it there")
    speech = load_speech(args.wav)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        logs = args.out
    else:  # server logs kept for post-mortems
        logs = Path(tempfile.mkdtemp(prefix="a2f-bench-")) / "bench"
    machine = f"{_cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} at start"
    runs = [run_mode(m, args, speech, logs) for m in args.modes]
    result = {"p95_bound": args.p95_bound, "seconds": args.seconds, "chunk_ms": args.chunk_ms,
              "utterances": args.utterances, "short_seconds": list(args.short_seconds),
              "protocol": args.protocol, "stagger": args.stagger, "machine": machine,
              "load_after": round(os.getloadavg()[0], 2), "argv": sys.argv[1:], "runs": runs}  # fmt: skip
    text = markdown(result)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
        args.out.with_suffix(".md").write_text(text)
    print(text)
    if not args.url:
        print(f"server logs: {logs}.server-*.log")
    return 0 if all(r["max_streams_within_bound"] > 0 for r in runs) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="audio2face bench", description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        return run(args)
    except Audio2FaceError as exc:  # one line, as argparse reports a bad option
        print(f"audio2face bench: error: {exc}", file=sys.stderr)
        return 2
